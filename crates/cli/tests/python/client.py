"""The Python `kubernetes` client against rkube: create, list with a selector, watch, patch
and delete. Exits non-zero with a message on the first thing that differs from upstream."""

import sys
import threading

from kubernetes import client, config, watch

config.load_kube_config(config_file=sys.argv[1])
core = client.CoreV1Api()
apps = client.AppsV1Api()
ns = "py-client"

core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=ns)))

for i, app in enumerate(["web", "web", "db"]):
    core.create_namespaced_config_map(
        ns,
        client.V1ConfigMap(
            metadata=client.V1ObjectMeta(name=f"cm-{i}", labels={"app": app}),
            data={"index": str(i)},
        ),
    )

web = core.list_namespaced_config_map(ns, label_selector="app=web")
names = sorted(cm.metadata.name for cm in web.items)
assert names == ["cm-0", "cm-1"], names
rv = web.metadata.resource_version
assert rv, "list has a resourceVersion"

deployment = client.V1Deployment(
    metadata=client.V1ObjectMeta(name="web"),
    spec=client.V1DeploymentSpec(
        replicas=1,
        selector=client.V1LabelSelector(match_labels={"app": "web"}),
        template=client.V1PodTemplateSpec(
            metadata=client.V1ObjectMeta(labels={"app": "web"}),
            spec=client.V1PodSpec(
                containers=[client.V1Container(name="web", image="busybox:1.36")]
            ),
        ),
    ),
)
created = apps.create_namespaced_deployment(ns, deployment)
assert created.metadata.generation == 1, created.metadata.generation
assert created.spec.strategy.type == "RollingUpdate", created.spec.strategy

# Watch from the list's revision: the change made below must arrive.
events = []
done = threading.Event()


def watcher():
    w = watch.Watch()
    for ev in w.stream(
        core.list_namespaced_config_map,
        ns,
        resource_version=rv,
        label_selector="app=web",
        timeout_seconds=10,
    ):
        events.append((ev["type"], ev["object"].metadata.name))
        if ev["object"].metadata.name == "cm-new":
            w.stop()
    done.set()


t = threading.Thread(target=watcher)
t.start()
core.create_namespaced_config_map(
    ns, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="cm-new", labels={"app": "web"}))
)
done.wait(15)
t.join(1)
assert ("ADDED", "cm-new") in events, events

# A strategic merge patch (the client's default for dicts) and a merge of labels.
patched = apps.patch_namespaced_deployment(
    "web", ns, {"spec": {"replicas": 3, "template": {"spec": {"containers": [{"name": "web", "image": "busybox:1.37"}]}}}}
)
assert patched.spec.replicas == 3, patched.spec.replicas
assert patched.spec.template.spec.containers[0].image == "busybox:1.37"
assert patched.metadata.generation == 2, patched.metadata.generation
scale = apps.read_namespaced_deployment_scale("web", ns)
assert scale.spec.replicas == 3, scale

# Errors come back as ApiException with upstream's codes.
try:
    core.read_namespaced_config_map("missing", ns)
    raise AssertionError("expected 404")
except client.exceptions.ApiException as e:
    assert e.status == 404, e.status

stale = core.read_namespaced_config_map("cm-2", ns)
core.patch_namespaced_config_map("cm-2", ns, {"data": {"index": "changed"}})
stale.data = {"index": "stale"}
try:
    core.replace_namespaced_config_map("cm-2", ns, stale)
    raise AssertionError("expected 409")
except client.exceptions.ApiException as e:
    assert e.status == 409, e.status

core.delete_namespaced_config_map("cm-0", ns)
left = sorted(cm.metadata.name for cm in core.list_namespaced_config_map(ns).items)
assert "cm-0" not in left, left
apps.delete_namespaced_deployment("web", ns)
assert apps.list_namespaced_deployment(ns).items == []

print("python client: ok")
