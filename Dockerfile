# One image for web, worker and Flower; docker-compose.yml picks the Procfile entry to run.
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /app
COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt
COPY . .
RUN useradd --create-home pqh && chown -R pqh /app
USER pqh
