from __future__ import annotations

import subprocess
import sys

from cascade_plugins.backends.nemo_rl.host_reward import HostEnvironmentReward
from cascade_plugins.interfaces import Sample


def test_registration_imports_neither_nemo_rl_nor_ray_nor_torch() -> None:
    code = (
        "import sys\n"
        "from cascade_plugins.plugins import load_plugins\n"
        "r = load_plugins('nemo_rl', use_env=False)\n"
        "b = r.make_backend('nemo_rl', nemo_rl_root='/nowhere', mode='emit')\n"
        "print(r.names('backend'), r.names('reward'), b.name,\n"
        "      [m for m in ('nemo_rl', 'ray', 'torch') if m in sys.modules])\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "['nemo_rl'] ['nemo_rl_env'] nemo_rl []"


def test_host_reward_names_its_environment_and_refuses_to_score() -> None:
    reward = HostEnvironmentReward(env="nemo_gym", dataset={"dataset_name": "NemoGymDataset"})
    results = reward.score([Sample(response="x"), Sample(response="y")])
    assert [r.verdict for r in results] == ["error", "error"]
    assert "'nemo_gym'" in results[0].details["error"]
    for kwargs, message in [({"env": ""}, "option 'env'"), ({"env": "cascade_math"}, "one of ours"),
                            ({"env": "x", "dataset": [1]}, "'dataset' must be a mapping")]:
        try:
            HostEnvironmentReward(**kwargs)
        except ValueError as exc:
            assert message in str(exc)
        else:
            raise AssertionError(kwargs)
