# One image for web, worker and Flower; docker-compose.yml picks the Procfile entry to run.
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /app
COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt
COPY . .
# Static files (the admin's, the browsable API's) go into the image, served by WhiteNoise;
# every container has its own filesystem, so the setup service cannot collect them for web.
RUN PQH_SECRET_KEY=collectstatic-only python manage.py collectstatic --noinput --verbosity 0
# The directory of the shared `metrics` volume (docker-compose), owned by the user that writes it.
RUN mkdir -p /app/.run/metrics && useradd --create-home pqh && chown -R pqh /app
USER pqh
