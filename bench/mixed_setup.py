"""Prepare a migrated, catalogued database for the mixed-workload benchmark (`bench/mixed_load.sh`).

    DATABASE_URL=... VAR_DIR=... .venv/bin/python bench/mixed_setup.py --out DIR --customers 8

Through the app's own settings (`DATABASE_URL`, or the SQLite file under `VAR_DIR`) and services:

- registers `--customers` customers (`CustomerService.register`, half of them without a phone number, so
  the SMS of their orders is logged as skipped) and issues each a read/write access token
  (`TokenService.issue`, as `shop create-staff-user --token` does);
- sets the stock of every active product to `--stock`, except `--hot` of them that get `--hot-stock`
  (the load sends a share of its order lines there, so they sell out and answer 400 while cancels put
  stock back: the contended case);
- writes what the wrk script and the invariant check need into `--out`: `tokens.txt`, `products.txt`
  (active product ids), `hot.txt`, `categories.txt`, `words.txt` (search words taken from product names)
  and `stock_before.json` (the stock of every product, the reference of `bench/mixed_invariants.py`).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
from collections import Counter
from datetime import timedelta
from pathlib import Path

from sqlalchemy import select, update

from app.db import make_alchemy_config
from app.settings import get_settings
from shop_catalog.models import Category, Product
from shop_identity import CustomerService, RegisterCustomer, TokenService
from shop_kernel import Unit

TOKEN_TTL = timedelta(days=1)


async def prepare(args: argparse.Namespace) -> dict[str, object]:
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    config = make_alchemy_config(get_settings())
    session_maker = config.create_session_maker()
    tokens: list[str] = []
    try:
        async with session_maker() as session:
            unit = Unit(session)
            for n in range(args.customers):
                password = secrets.token_urlsafe(18)
                customer = await CustomerService(unit).register(
                    RegisterCustomer(
                        username=f"bench_customer_{n}",
                        email=f"bench{n}@shop.example",
                        password=password,
                        password_confirm=password,
                        first_name="Bench",
                        last_name=f"Customer{n}",
                        phone_number=f"+2547{n:08d}" if n % 2 == 0 else None,
                    )
                )
                tokens.append(
                    await TokenService(unit).issue(customer_id=customer.id, scopes=("read", "write"), ttl=TOKEN_TTL)
                )
        async with session_maker() as session, session.begin():
            active = list(
                await session.scalars(select(Product.id).where(Product.is_active.is_(True)).order_by(Product.id))
            )
            hot = active[: args.hot]
            await session.execute(update(Product).where(Product.is_active.is_(True)).values(stock_quantity=args.stock))
            await session.execute(update(Product).where(Product.id.in_(hot)).values(stock_quantity=args.hot_stock))
        async with session_maker() as session:
            stock = {str(pid): qty for pid, qty in await session.execute(select(Product.id, Product.stock_quantity))}
            categories = list(await session.scalars(select(Category.id).order_by(Category.id)))
            names = list(await session.scalars(select(Product.name)))
    finally:
        await config.get_engine().dispose()
    words = Counter(word.lower() for name in names for word in name.split() if len(word) >= 4 and word.isalpha())
    (out / "tokens.txt").write_text("\n".join(tokens) + "\n")
    (out / "products.txt").write_text("\n".join(map(str, active)) + "\n")
    (out / "hot.txt").write_text("\n".join(map(str, hot)) + "\n")
    (out / "categories.txt").write_text("\n".join(map(str, categories)) + "\n")
    (out / "words.txt").write_text("\n".join(word for word, _ in words.most_common(40)) + "\n")
    (out / "stock_before.json").write_text(json.dumps(stock))
    return {
        "customers": len(tokens),
        "active_products": len(active),
        "products": len(stock),
        "hot_products": len(hot),
        "categories": len(categories),
        "stock": args.stock,
        "hot_stock": args.hot_stock,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True, help="directory for the files the load and the check read")
    parser.add_argument("--customers", type=int, default=8)
    parser.add_argument("--stock", type=int, default=100_000, help="stock of every active product")
    parser.add_argument("--hot", type=int, default=10, help="how many products get the low --hot-stock")
    parser.add_argument("--hot-stock", type=int, default=30)
    print(json.dumps(asyncio.run(prepare(parser.parse_args()))), flush=True)


if __name__ == "__main__":
    main()
