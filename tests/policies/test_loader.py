"""Policy validation: every problem, each at its exact file:line:col, worded for users."""

from __future__ import annotations

import datetime as dt
import textwrap
from pathlib import Path

import pytest

from policies.loader import KEY_CHUNK, PolicyInvalid, Problem, load_policy, load_policy_at
from policies.models import Policy, WeightedTarget
from policies.problems import RevisionNotFound
from tests.support.policy_repo import PolicyRepo, hash_of, new_secret

PROVIDERS = """
providers:
  openai:
    type: openai
    base_url: https://api.openai.com/v1
    credentials: [env:OPENAI_API_KEY]
  local: {type: openai-compatible, base_url: http://127.0.0.1:11434/v1}
"""
ROUTES = """
routes:
  gpt-4o-mini:
    targets: [openai/gpt-4o-mini]
  fast:
    targets: [local/llama3.2, {target: openai/gpt-4o-mini, weight: 2}]
    strategy: weighted
  "llama*":
    targets: [local/llama*]
"""
LIMITS = """
default: {rpm: 60}
tiers:
  standard: {rpm: 120, tpm: 200000}
"""
H1, H2, H3 = (hash_of(new_secret()) for _ in range(3))
KEYS = f"""
keys:
  - id: search-team
    hash: {H1}
    tier: standard
    models: ["gpt-4o*"]
admins:
  - id: ops
    hash: {H2}
"""


def files(overrides: dict[str, str | None] | None = None) -> dict[str, bytes]:
    """A valid policy, with some files replaced (None removes one)."""
    base: dict[str, str | None] = {
        "providers.yaml": PROVIDERS,
        "routes.yaml": ROUTES,
        "limits.yaml": LIMITS,
        "keys.yaml": KEYS,
        **(overrides or {}),
    }
    return {n: textwrap.dedent(t).lstrip().encode() for n, t in base.items() if t is not None}


def problems_of(policy_files: dict[str, bytes]) -> list[str]:
    with pytest.raises(PolicyInvalid) as caught:
        load_policy(policy_files)
    return [str(p) for p in caught.value.problems]


def test_valid_policy_loads_merged() -> None:
    extra = f"keys:\n  - id: batch-job\n    hash: {H3}\n"
    policy = load_policy(files({"keys/team.yaml": extra}))
    assert isinstance(policy, Policy)
    assert [k.id for k in policy.keys] == ["search-team", "batch-job"]
    assert [a.id for a in policy.admins] == ["ops"]
    assert policy.limits.tiers["standard"].tpm == 200000
    fast = policy.routes["fast"]
    assert fast.targets[0] == "local/llama3.2" and isinstance(fast.targets[1], WeightedTarget)


def test_problem_renders_as_file_line_col() -> None:
    assert str(Problem("keys.yaml", 3, 7, "bad")) == "keys.yaml:3:7: bad"


def test_unknown_field_points_at_the_key_and_lists_allowed_fields() -> None:
    found = problems_of(files({"limits.yaml": "default: {rmp: 60}\n"}))
    assert found == [
        "limits.yaml:1:11: unknown field 'rmp'; did you mean 'rpm'? (allowed: rpm, tpm, "
        "max_concurrency, tokens_per_day, tokens_per_month, usd_per_day, "
        "usd_per_month, enforce, shadow)"
    ]


def test_wrong_type_points_at_the_value() -> None:
    found = problems_of(files({"limits.yaml": "tiers:\n  standard:\n    rpm: lots\n"}))
    assert found == ["limits.yaml:3:10: 'rpm' must be a whole number, not text"]


def test_bad_hash_is_located_and_never_echoed() -> None:
    secret = new_secret()
    text = f"keys:\n  - id: a\n    hash: {secret}\n"
    found = problems_of(files({"keys.yaml": text}))
    assert len(found) == 1 and found[0].startswith("keys.yaml:3:11: 'hash' must be 'sha256:'")
    assert secret not in found[0]


def test_raw_credential_in_providers_is_not_echoed() -> None:
    text = "providers:\n  openai:\n    type: openai\n    base_url: https://x\n"
    text += "    credentials: [env:OK, sk-live-abcdef0123456789]\n"
    found = problems_of(files({"providers.yaml": text}))
    assert found == [
        "providers.yaml:5:27: each entry of 'credentials' must be a reference, env:NAME or "
        "file:NAME, never the secret itself"
    ]


def test_yaml_syntax_error_is_located() -> None:
    found = problems_of(files({"routes.yaml": "routes:\n  a: {targets: [openai/x]\n  b: 1\n"}))
    assert len(found) == 1
    assert found[0].startswith("routes.yaml:3:3: YAML syntax error")


def test_tab_indentation_says_to_use_spaces() -> None:
    found = problems_of(files({"limits.yaml": "default:\n\trpm: 1\n"}))
    assert len(found) == 1 and found[0].startswith("limits.yaml:2:1: YAML syntax error")
    assert "spaces" in found[0]


def test_duplicate_yaml_keys_are_refused_and_the_rest_still_checked() -> None:
    found = problems_of(
        files({"limits.yaml": "default: {}\ntiers: {}\ntiers:\n  gold: {rmp: 5}\n"})
    )
    assert found[0] == "limits.yaml:3:1: duplicate key 'tiers' (also at line 2): keep only one"
    assert found[1].startswith("limits.yaml:4:10: unknown field 'rmp'")
    assert len(found) == 2


def test_second_document_is_refused() -> None:
    found = problems_of(files({"limits.yaml": "default: {}\n---\ndefault: {}\n"}))
    assert len(found) == 1 and found[0].startswith("limits.yaml:2:1: a policy file holds one")


def test_duplicate_key_ids_across_files() -> None:
    text = f"# team a\nkeys:\n  - id: search-team\n    hash: {H3}\n"
    found = problems_of(files({"keys/team-a.yaml": text}))
    assert found == [
        "keys/team-a.yaml:3:9: duplicate key id 'search-team' (also at keys.yaml:2:9): ids "
        "must be unique across keys.yaml and keys/*.yaml; rename one"
    ]


def test_duplicate_hashes_between_keys_and_admins() -> None:
    text = f"keys:\n  - id: other\n    hash: {H2}\n"
    found = problems_of(files({"keys/b.yaml": text}))
    assert found == [
        "keys/b.yaml:3:11: key 'other' has the same hash as admin 'ops' (at keys.yaml:8:11): "
        "one secret cannot serve two entries; rotate one of them"
    ]
    assert H2 not in found[0]


def test_missing_routes_file() -> None:
    found = problems_of(files({"routes.yaml": None}))
    assert found == [
        "routes.yaml:1:1: routes.yaml is missing: add it with a top-level 'routes:' mapping "
        "(every other file is optional)"
    ]


def test_only_routes_is_required() -> None:
    policy = load_policy({"routes.yaml": b"routes: {}\n"})
    assert policy.routes == {} and policy.keys == () and policy.limits.default.rpm is None


def test_unknown_provider_in_target() -> None:
    text = "routes:\n  a:\n    targets: [openai/x, opneai/gpt-4o]\n"
    found = problems_of(files({"routes.yaml": text}))
    assert found == [
        "routes.yaml:3:25: unknown provider 'opneai' in target 'opneai/gpt-4o' (providers: "
        "openai, local); define it in providers.yaml or fix the name"
    ]


def test_target_without_provider_and_stray_star() -> None:
    text = "routes:\n  a:\n    targets: [gpt-4o]\n  b:\n    targets:\n      - openai/*\n"
    found = problems_of(files({"routes.yaml": text}))
    assert found == [
        "routes.yaml:3:15: each entry of 'targets' must be provider/model, e.g. openai/gpt-4o-mini",
    ]
    found = problems_of(files({"routes.yaml": "routes:\n  b:\n    targets:\n      - openai/*\n"}))
    assert found == [
        "routes.yaml:4:9: target 'openai/*' has a '*' but route 'b' is not a glob: name the "
        "upstream model exactly"
    ]


def test_weighted_target_errors_point_inside_the_mapping() -> None:
    text = "routes:\n  a:\n    targets:\n      - {target: openai/x, weight: 0}\n"
    assert problems_of(files({"routes.yaml": text})) == [
        "routes.yaml:4:36: 'weight' must be greater than 0"
    ]


def test_unknown_tier() -> None:
    text = f"keys:\n  - id: a\n    hash: {H3}\n    tier: gold\n"
    found = problems_of(files({"keys/a.yaml": text}))
    assert found == [
        "keys/a.yaml:4:11: unknown tier 'gold' (tiers: standard); add it under 'tiers:' in "
        "limits.yaml or fix the name"
    ]


def test_invalid_glob_in_models() -> None:
    text = f'keys:\n  - id: a\n    hash: {H3}\n    models: ["gpt-*", "[z-a]"]\n'
    found = problems_of(files({"keys/a.yaml": text}))
    assert found == [
        "keys/a.yaml:4:23: model glob '[z-a]' is not usable: it can never match: a range such "
        "as 'z-a' is reversed"
    ]
    routes = 'routes:\n  "gpt-[4o*":\n    targets: [openai/gpt-4o]\n'
    assert problems_of(files({"routes.yaml": routes})) == [
        "routes.yaml:2:3: route name 'gpt-[4o*' is not a usable glob: a '[' is never closed; "
        "write '[[]' for a literal '['"
    ]


def test_every_problem_in_every_file_is_reported() -> None:
    found = problems_of(
        files(
            {
                "limits.yaml": "default: {rmp: 1}\n",
                "providers.yaml": "providers:\n  openai: {type: opnai, base_url: https://x}\n",
                "keys.yaml": "keys:\n  - id: a\n  - {id: b, hash: nope}\n",
                "route.yaml": "x: 1\n",
            }
        )
    )
    assert [f.split(": ", 1)[0] for f in found] == [
        "keys.yaml:2:5",
        "keys.yaml:3:19",
        "limits.yaml:1:11",
        "providers.yaml:2:18",
        "route.yaml:1:1",
    ]
    assert "missing required field 'hash'" in found[0]
    assert "must be one of 'openai', 'anthropic'" in found[3] and "(got 'opnai')" in found[3]
    assert "unknown policy file 'route.yaml'" in found[4]


def test_dotfiles_are_ignored_and_doubled_files_refused() -> None:
    assert load_policy(files({".yamllint.yml": "rules: {}\n"}))
    found = problems_of(files({"routes.yml": "routes: {}\n"}))
    assert found == ["routes.yml:1:1: both routes.yaml and routes.yml exist: keep one of them"]


def test_yaml_1_2_readings() -> None:
    text = f"""
    keys:
      - id: a
        hash: {H3}
        owner: no
        description: on
        expires: 2027-06-30
        disabled: no
      - id: b
        hash: {H1}
        owner: 2027-06-30
        disabled: yes
    """
    policy = load_policy(files({"keys.yaml": text}))
    first, second = policy.keys
    assert (first.owner, first.description) == ("no", "on")  # YAML 1.1 would say False, True
    assert first.expires == dt.date(2027, 6, 30) and first.disabled is False
    assert second.owner == "2027-06-30" and second.disabled is True


def test_url_in_flow_mapping_is_yaml_1_2_and_errors_there_are_located() -> None:
    # libyaml (YAML 1.1) refuses ':' inside a plain scalar in a flow mapping; YAML 1.2 allows it.
    text = "providers:\n  p: {type: openai, base_url: http://127.0.0.1:9/v1, retries: 2}\n"
    assert problems_of(files({"providers.yaml": text})) == [
        "providers.yaml:2:54: unknown field 'retries'; did you mean 'max_retries'? (allowed: "
        "type, base_url, credentials, selection, cooldown_s, max_cooldown_s, timeout_s, "
        "connect_timeout_s, first_byte_timeout_s, idle_timeout_s, max_retries, api_version, "
        "api, region, headers)"
    ]


def test_big_keys_file_is_validated_in_chunks_with_exact_positions() -> None:
    count = KEY_CHUNK * 2 + 37
    lines = ["keys:"]
    for i in range(count):
        lines += [f"  - id: k{i}", f"    hash: {hash_of(f'mg-{i}')}"]
    bad = KEY_CHUNK + 11
    lines[1 + bad * 2] = f"  - id: k{bad}!"
    policy_files = files({"keys.yaml": "\n".join(lines) + "\n"})
    found = problems_of(policy_files)
    assert len(found) == 1 and found[0].startswith(f"keys.yaml:{2 + bad * 2}:9: 'id' must be")
    del policy_files["keys.yaml"]
    policy_files["keys.yaml"] = ("\n".join(lines[:1] + lines[3:]) + "\n").encode()
    policy_files["keys.yaml"] = policy_files["keys.yaml"].replace(b"!", b"")
    assert len(load_policy(policy_files).keys) == count - 1


def test_load_policy_at_reads_the_commit_not_the_working_tree(tmp_path: Path) -> None:
    repo = PolicyRepo(tmp_path / "policy")
    for name, text in files().items():
        repo.write(name, text.decode())
    head = repo.commit()
    repo.write("limits.yaml", "default: {rmp: 1}\n")  # broken, but not committed
    sha, policy = load_policy_at(repo.path, "main")
    assert sha == head and policy.limits.default.rpm == 60
    repo.commit("break it")
    with pytest.raises(PolicyInvalid, match=r"limits\.yaml:1:11: unknown field 'rmp'"):
        load_policy_at(repo.path, "refs/heads/main")
    assert load_policy_at(repo.path, head)[0] == head
    with pytest.raises(RevisionNotFound, match="revision 'release' not found"):
        load_policy_at(repo.path, "release")
