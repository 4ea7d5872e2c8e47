"""GPU memory policy and device description (the parts that run without a GPU)."""

import jax

from ntkvae import accelerator


def test_preallocation_turned_off_by_default():
    env = {"PATH": "/usr/bin"}
    assert "preallocation off" in accelerator.configure_gpu_memory(env)
    assert env["XLA_PYTHON_CLIENT_PREALLOCATE"] == "false"


def test_users_memory_policy_is_kept():
    for name, value in [("XLA_PYTHON_CLIENT_MEM_FRACTION", ".30"), ("XLA_PYTHON_CLIENT_PREALLOCATE", "true"),
                        ("XLA_CLIENT_MEM_FRACTION", ".5")]:
        env = {name: value}
        assert value in accelerator.configure_gpu_memory(env)
        assert env == {name: value}


def test_device_description_names_platform_and_kind():
    device = jax.devices()[0]
    assert accelerator.describe_device(device) == f"{device.platform}:{device.device_kind}"
    assert accelerator.describe_device(device).split(":")[0] in ("cpu", "gpu", "tpu")
