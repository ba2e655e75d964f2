# dvc-bot: runs `python -m bot run` (or `serve`) as a non-root user; state lives in the /data volume.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    BOT_DB=/data/bot.db \
    BOT_CONTENT=/app

WORKDIR /app
COPY pyproject.toml README.md ./
COPY bot ./bot
RUN pip install --no-cache-dir .
COPY procedures.yaml ./
COPY flows ./flows
COPY schemas ./schemas

RUN useradd --system --uid 10001 --home-dir /data --shell /usr/sbin/nologin dvcbot \
    && mkdir -p /data && chown dvcbot /data
USER dvcbot
VOLUME ["/data"]

# Fail fast on broken content before serving anyone.
RUN python -m bot validate

# `run`: Telegram long polling when TELEGRAM_BOT_TOKEN is set, else the console chat.
# Webhooks instead: docker run -p 8080:8080 -e TELEGRAM_BOT_TOKEN=… -e TELEGRAM_WEBHOOK_SECRET=… \
#   -e TELEGRAM_WEBHOOK_URL=https://… -v dvc-data:/data dvc-bot python -m bot serve --host 0.0.0.0
EXPOSE 8080
CMD ["python", "-m", "bot", "run"]
