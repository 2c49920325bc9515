"""docker-compose.yml: the four services exist and every env var they set is a real setting."""
from pathlib import Path

import yaml

from backend.config import Settings

ROOT = Path(__file__).resolve().parent.parent


def _setting_env_names() -> set[str]:
    names = set()
    prefix = Settings.model_config.get("env_prefix", "")
    for name, field in Settings.model_fields.items():
        names.add((prefix + name).upper())
        alias = field.validation_alias
        for choice in getattr(alias, "choices", []) or []:
            names.add(str(choice).upper())
    return names


def test_compose_services_and_env():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert {"postgres", "redis", "api", "gpu-worker"} <= set(services)
    gpu = services["gpu-worker"]["deploy"]["resources"]["reservations"]["devices"][0]
    assert gpu["driver"] == "nvidia" and "gpu" in gpu["capabilities"]
    known = _setting_env_names()
    for name in ("api", "gpu-worker", "cpu-worker"):
        env = services[name]["environment"]
        # AWS_*: boto3's; HF_TOKEN: read by huggingface_hub (gated models), not by the studio's settings
        unknown = sorted(k for k in env if k.upper() not in known | {"HF_TOKEN"} and not k.startswith("AWS_"))
        assert not unknown, f"service {name} sets env vars the settings do not read: {unknown}"
        assert "DATABASE_URL" in env and "CELERY_BROKER_URL" in env


def test_gpu_worker_gets_hf_token_and_one_process_per_gpu():
    gpu = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]["gpu-worker"]
    assert gpu["environment"]["HF_TOKEN"] == "${HF_TOKEN:-}"
    assert "--gpus" in gpu["command"]
    assert "torchvision==${TORCHVISION_VERSION} --index-url ${TORCH_INDEX_URL}" in (ROOT / "Dockerfile").read_text()


def test_settings_read_compose_env(monkeypatch):
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    for k, v in compose["services"]["api"]["environment"].items():
        monkeypatch.setenv(k, str(v))
    s = Settings()
    assert s.resolved_database_url().startswith("postgresql+psycopg://studio")
    assert s.resolved_broker_url() == "redis://redis:6379/0"
    assert str(s.data_dir) == "/data" and s.port == 8000 and s.max_image_pixels == 40_000_000
