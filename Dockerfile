# One image for all Steadyeye services; each service is a different command:
#   python -m services.ingest | services.preprocess | services.inference
# Triton runs from NVIDIA's own image with the model repository (see compose.yaml, helm/).
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY services services
COPY steadyeye steadyeye
RUN pip wheel --no-cache-dir --wheel-dir /wheels ".[view]"

FROM python:3.11-slim
RUN useradd --uid 10001 --no-create-home --shell /usr/sbin/nologin steadyeye \
    && install -d -o 10001 -g 10001 /var/lib/steadyeye/dataset
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels
USER 10001
ENV PYTHONUNBUFFERED=1
EXPOSE 8080
ENTRYPOINT ["python", "-m"]
CMD ["services.inference"]
