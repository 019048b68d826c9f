"""Notification texts from jinja2 templates: one base template per channel, autoescaped HTML, strict variables."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

__all__ = ("RenderedEmail", "Renderer")

SMS_SEGMENT = 160
SUBJECTS = {
    "order.placed": "New Order Received - {order_number}",
    "order.cancelled": "Order Cancelled - {order_number}",
}
TEMPLATE_NAMES = {"order.placed": "order_placed", "order.cancelled": "order_cancelled"}
MESSAGE_SUBJECTS = {
    "password_changed": "Your password was changed",
    "password_reset": "Reset your password",
    "email_verification": "Confirm your e-mail address",
}
"""The account messages another context may request (`shop_kernel.MessageRequested`), by template name."""


@dataclass(frozen=True)
class RenderedEmail:
    subject: str
    text: str
    html: str


class Renderer:
    def __init__(self) -> None:
        loader = PackageLoader("shop_notify", "templates")
        self.env = Environment(
            loader=loader,
            undefined=StrictUndefined,
            autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=False),
            trim_blocks=True,
            lstrip_blocks=True,
            # the templates ship inside the package: compiled once, never checked again (a stat per render was
            # 1.5 % of the worker under orders)
            auto_reload=False,
        )

    def sms(self, topic: str, context: dict[str, Any]) -> str:
        """One line; if a long name would push it past one SMS segment, the name is shortened."""
        text = self._render(f"sms/{TEMPLATE_NAMES[topic]}.txt", context)
        if len(text) > SMS_SEGMENT:
            customer = dict(context["customer"])
            customer["first_name"] = (customer.get("first_name") or customer["username"])[:12]
            text = self._render(f"sms/{TEMPLATE_NAMES[topic]}.txt", {**context, "customer": customer})
        return text

    def email(self, topic: str, context: dict[str, Any]) -> RenderedEmail:
        name = TEMPLATE_NAMES[topic]
        return RenderedEmail(
            subject=SUBJECTS[topic].format(order_number=context["order_number"]),
            text=self.env.get_template(f"email/{name}.txt").render(context).strip() + "\n",
            html=self.env.get_template(f"email/{name}.html").render(context),
        )

    def message(self, template: str, channel: str, context: dict[str, Any]) -> RenderedEmail:
        """A requested message (`email/account_<template>.*` or `sms/account_<template>.txt`); an SMS has no
        subject or HTML. Raises `LookupError` for a template notify does not have."""
        if template not in MESSAGE_SUBJECTS:
            raise LookupError(template)
        name = f"account_{template}"
        if channel == "sms":
            text = self._render(f"sms/{name}.txt", context)
            if len(text) > SMS_SEGMENT:
                raise ValueError(f"the {template} SMS is {len(text)} characters, more than one segment")
            return RenderedEmail(subject="", text=text, html="")
        return RenderedEmail(
            subject=MESSAGE_SUBJECTS[template],
            text=self.env.get_template(f"email/{name}.txt").render(context).strip() + "\n",
            html=self.env.get_template(f"email/{name}.html").render(context),
        )

    def _render(self, name: str, context: dict[str, Any]) -> str:
        return re.sub(r"\s+", " ", self.env.get_template(name).render(context)).strip()
