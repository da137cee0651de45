# shellcheck shell=bash disable=SC2034,SC2154 # sets passage and load for the sourcing script, which sets bench_name and root
# Helpers the bench scripts share; sourced, not run. The sourcing script sets bench_name (its tag in progress
# lines) and root (the repository), and uses `set -euo pipefail`.

say() { echo "[$bench_name] $(date +%T) $*" >&2; }

bench_install() { # COMMAND:PACKAGE...: apt-get installs the packages whose commands are missing
    local pair need=()
    for pair in "$@"; do
        command -v "${pair%%:*}" >/dev/null || need+=("${pair#*:}")
    done
    if ((${#need[@]})); then
        say "installing ${need[*]}"
        apt-get update -qq
        # Debian starts the packaged services where it can; the benches run their own instances only.
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
    fi
}

bench_build() { # [load]: builds Passage (and the load tool, bench/connect/load) in Release; sets passage (and load)
    export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
    say "building Passage$([[ "${1:-}" == load ]] && echo ' and the load tool') (Release)"
    dotnet build "$root/src/Passage.Cli/Passage.Cli.csproj" -c Release -v quiet -nologo >&2
    passage="$root/src/Passage.Cli/bin/Release/net10.0/passage"
    if [[ "${1:-}" == load ]]; then
        dotnet build "$root/bench/connect/load/connect-load.csproj" -c Release -v quiet -nologo >&2
        load="$root/bench/connect/load/bin/Release/net10.0/connect-load"
    fi
}

stop_pids() { # PID...: TERM to each, then reap_pids; only these processes
    local pid
    for pid in "$@"; do kill -TERM "$pid" 2>/dev/null || true; done
    reap_pids "$@"
}

reap_pids() { # PID...: up to 5 s each to end (after a TERM sent by the caller), then KILL
    local pid
    for pid in "$@"; do
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
}

wait_for() { # FILE PATTERN: wait up to 15 s for a line matching PATTERN (extended regex)
    for _ in $(seq 150); do grep -qE "$2" "$1" 2>/dev/null && return 0; sleep 0.1; done
    echo "timed out waiting for '$2' in $1:" >&2; cat "$1" >&2; exit 1
}

listening() { grep -qi "0100007F:$(printf %04X "$1") 00000000:0000 0A" /proc/net/tcp; } # PORT: 127.0.0.1:PORT in LISTEN

wait_listen() { # PORT LOG...: wait up to 15 s until 127.0.0.1:PORT is in LISTEN; else show the logs and exit
    local port="$1"; shift
    for _ in $(seq 150); do listening "$port" && return 0; sleep 0.1; done
    echo "nothing listens on 127.0.0.1:$port; logs:" >&2; cat "$@" >&2 2>/dev/null; exit 1
}

field() { # LINE KEY: the value after KEY in a line of "key value" pairs; "fail" for a line that is "fail"
    awk -v k="$2" '/^fail$/ {print "fail"; exit} {for (i = 1; i < NF; i++) if ($i == k) { print $(i + 1); exit } }' <<<"$1"
}

to_us() { # wrk latency like 1.23ms, 456.00us, 1.20s -> µs
    awk -v v="$1" 'BEGIN { if (v ~ /us$/) f = 1; else if (v ~ /ms$/) f = 1000; else if (v ~ /s$/) f = 1000000; else { print "fail"; exit }
        sub(/[a-z]+$/, "", v); printf "%.0f", v * f }'
}

median_decimals=2
median() { # VALUE...: the median of the numeric ones (of two middle ones, their mean to $median_decimals places);
    # "-" when none is numeric and one is "-" (not applicable), "fail" when none is numeric otherwise
    local nums
    nums="$(printf '%s\n' "$@" | grep -E '^-?[0-9.]+$' | sort -g || true)"
    if [[ -z "$nums" ]]; then
        if printf '%s\n' "$@" | grep -q '^-$'; then echo -; else echo fail; fi
        return
    fi
    awk -v d="$median_decimals" '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else printf "%.*f\n", d, (v[NR / 2] + v[NR / 2 + 1]) / 2 }' <<<"$nums"
}

ratio() { # A B: A/B to two decimals, "-" unless both are numbers and B > 0
    if [[ "$1" =~ ^[0-9.]+$ && "$2" =~ ^[0-9.]+$ ]] && awk -v b="$2" 'BEGIN { exit !(b > 0) }'; then
        awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'
    else echo -; fi
}

start_squid() { # PORT DIR: squid as a CONNECT proxy to any port on 127.0.0.1:PORT, its files in DIR; appends its PID
    # to pids and sets squid_pid; returns once it listens
    mkdir -p "$2" && chmod 777 "$2"
    cat >"$2/squid.conf" <<EOF
http_port 127.0.0.1:$1
http_access allow all
cache deny all
cache_mem 8 MB
access_log none
cache_log $2/cache.log
pid_filename $2/squid.pid
coredump_dir $2
pinger_enable off
max_filedescriptors 16384
shutdown_lifetime 1 seconds
EOF
    squid -N -f "$2/squid.conf" >"$2/squid.out" 2>&1 &
    pids+=($!); squid_pid=$!
    wait_listen "$1" "$2/squid.out" "$2/cache.log"
}

haproxy_head() { # the global and defaults sections of every bench's HAProxy (TCP mode); the caller adds its listen sections
    cat <<EOF
global
    # fds: 2 per connection, 2 per splice pipe; the hard limit on these machines is 20000
    ulimit-n 20000
    maxconn 9400
    maxpipes 256
    nbthread $(nproc)
    log stderr format short local0 warning
defaults
    mode tcp
    maxconn 9400
    log global
    option dontlognull
    timeout connect 10s
    timeout client 5m
    timeout server 5m
EOF
}
