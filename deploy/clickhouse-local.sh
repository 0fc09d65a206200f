#!/usr/bin/env bash
# Starts Debian's clickhouse-server with its data under DIR (default .ogma/clickhouse) when nothing
# answers on 127.0.0.1:9000, installing the package first when it is missing. Idempotent.
set -euo pipefail
dir=$(realpath -m "${1:-.ogma/clickhouse}")
port=${OGMA_CLICKHOUSE_PORT:-9000}

answers() { clickhouse-client --port "$port" --query 'SELECT 1' >/dev/null 2>&1; }

if ! command -v clickhouse-server >/dev/null; then
	echo ">> installing clickhouse-server (Debian)"
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq clickhouse-server clickhouse-client >/dev/null
fi
if answers; then
	echo ">> clickhouse answers on 127.0.0.1:$port"
	exit 0
fi
echo ">> starting clickhouse-server, data in $dir (a few seconds)"
mkdir -p "$dir/data" "$dir/tmp" "$dir/user_files" "$dir/format_schemas" "$dir/log" "$dir/users.d"
# Users come from a copy of the packaged users.xml beside the data, so that
# files dropped in $dir/users.d (ogma dashboards login --users-dir) add
# logins: ClickHouse 18.16 takes users from files only.
[ -f "$dir/users.xml" ] || cp /etc/clickhouse-server/users.xml "$dir/users.xml"
# Overrides after "--" replace the packaged config's paths and listeners, so the server runs
# unprivileged of /var/lib and only on loopback.
nohup clickhouse-server --config-file=/etc/clickhouse-server/config.xml -- \
	--path="$dir/data/" --tmp_path="$dir/tmp/" --users_config="$dir/users.xml" --user_files_path="$dir/user_files/" \
	--format_schema_path="$dir/format_schemas/" \
	--logger.log="$dir/log/server.log" --logger.errorlog="$dir/log/server.err.log" --logger.level=warning \
	--listen_host=127.0.0.1 --tcp_port="$port" --http_port=$((port - 877)) --interserver_http_port=$((port + 9)) \
	>"$dir/log/stdout.log" 2>&1 &
for _ in $(seq 1 300); do
	if answers; then
		echo ">> clickhouse answers on 127.0.0.1:$port"
		exit 0
	fi
	sleep 0.1
done
echo "clickhouse-server did not answer within 30 s; see $dir/log" >&2
exit 1
