"""Invalid configuration exits 78 (EX_CONFIG) with a message naming the
variable, before anything is forked or created."""
import os
import subprocess
import tempfile

from harness import BIN, check

cases = [
    ({"RECSD_HTTP_PORT": "http"}, "RECSD_HTTP_PORT", "not an integer"),
    ({"RECSD_HTTP_PORT": "0"}, "RECSD_HTTP_PORT", "between 1 and 65535"),
    ({"RECSD_ACTORS": "ranker,chef"}, "RECSD_ACTORS", "unknown actor"),
    ({"RECSD_HEARTBEAT_INTERVAL_MS": "2000", "RECSD_HEARTBEAT_TIMEOUT_MS": "1000"},
     "RECSD_HEARTBEAT_TIMEOUT_MS", "greater than"),
    ({"RECSD_LOG_LEVEL": "chatty"}, "RECSD_LOG_LEVEL", "debug, info, warn or error"),
    ({"RECSD_RUNTIME_DIR": "run/here"}, "RECSD_RUNTIME_DIR", "absolute"),
    ({"RECSD_LOG_FILE": "logs/recsd.log"}, "RECSD_LOG_FILE", "absolute path"),
    ({"RECSD_LOG_FILE_MAX_BYTES": "lots"}, "RECSD_LOG_FILE_MAX_BYTES", "not a size"),
    ({"RECSD_LOG_FILE_MAX_BYTES": "100"}, "RECSD_LOG_FILE_MAX_BYTES", "between 4096 and"),
    ({"RECSD_LOG_FILE_KEEP": "0"}, "RECSD_LOG_FILE_KEEP", "between 1 and 1000"),
]
base = tempfile.mkdtemp(prefix="recsd-cfg-")
for i, (env_over, var, words) in enumerate(cases):
    rt = os.path.join(base, f"rt{i}")
    env = dict(os.environ, RECSD_RUNTIME_DIR=rt)
    env.update(env_over)
    for cmd in (["run"], ["migrate"], ["actor", "ranker"]):
        out = subprocess.run([BIN, *cmd], env=env, capture_output=True, text=True, timeout=10)
        check(out.returncode == 78, f"{' '.join(cmd)} with bad {var}: exit 78 (got {out.returncode})")
        check(var in out.stderr and words in out.stderr,
              f"message names {var} and says '{words}': {out.stderr.strip()}")
    check(not os.path.exists(rt), "nothing was created or forked")
os.rmdir(base)
