# syntax=docker/dockerfile:1
# One image, three roles chosen by the command (see docs/deployment.md):
#   api      uvicorn --factory app.asgi:create_app --host 0.0.0.0 --port 8000 --proxy-headers  (the default)
#   worker   shop worker
#   migrate  shop migrate
# Both stages use the same base image: the virtual environment points at its interpreter.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ghcr.io/astral-sh/uv:0.13.9 AS uv

FROM ${PYTHON_IMAGE} AS build
COPY --from=uv /uv /usr/local/bin/uv
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PYTHON_PREFERENCE=only-system \
    UV_PROJECT_ENVIRONMENT=/opt/shop/venv
WORKDIR /src
# Third-party dependencies first, from the lock alone: this layer survives changes to our code.
RUN --mount=type=cache,target=/root/.cache/uv \
    --mount=type=bind,source=uv.lock,target=uv.lock \
    --mount=type=bind,source=pyproject.toml,target=pyproject.toml \
    uv sync --frozen --no-dev --all-packages --no-install-workspace
COPY pyproject.toml uv.lock README.md ./
COPY packages ./packages
COPY app ./app
# Our packages as wheels (non-editable): the runtime stage needs the environment, not the sources.
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --all-packages --no-editable

FROM ${PYTHON_IMAGE} AS runtime
RUN groupadd --system --gid 10001 shop \
    && useradd --system --uid 10001 --gid shop --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin shop \
    && mkdir -p /app/var \
    && chown shop:shop /app/var
# Owned by root and read-only to the app user.
COPY --from=build /opt/shop/venv /opt/shop/venv
ENV PATH="/opt/shop/venv/bin:${PATH}" \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    APP_ENV=production \
    VAR_DIR=/app/var
WORKDIR /app
USER 10001:10001
EXPOSE 8000
# Liveness of the api role; compose turns it off for the worker and migrate roles (no curl in the image).
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/api/health/', timeout=4)"]
CMD ["uvicorn", "--factory", "app.asgi:create_app", "--host", "0.0.0.0", "--port", "8000", "--proxy-headers"]
