# dvc-bot: runs `python -m bot run` as a non-root user; state lives in the /data volume.
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

CMD ["python", "-m", "bot", "run"]
