# Sourced by scripts/test.sh: keeps every Ray test cluster (and any CLI the tests start)
# on 127.0.0.1. See docs/scaling.md; each variable's reason is in tests/ray/_cluster.py.
export RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0
export RAY_USAGE_STATS_ENABLED=0
export RAY_USAGE_STATS_REPORT_URL=http://127.0.0.1:9/
export http_proxy=http://127.0.0.1:9 https_proxy=http://127.0.0.1:9
export HTTP_PROXY=http://127.0.0.1:9 HTTPS_PROXY=http://127.0.0.1:9
export no_proxy=127.0.0.1,localhost,::1 NO_PROXY=127.0.0.1,localhost,::1
