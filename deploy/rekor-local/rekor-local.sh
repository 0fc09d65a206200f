#!/usr/bin/env bash
# A real local Rekor v1 log: rekor-server v1.5.4 on Trillian v1.7.3 and MariaDB (Debian), on
# loopback, with a persisted tree id and a file signer key, for `make run`, the tests and
# air-gapped installs. Facts behind each flag: ../../../shared/notes/rekor-local-stack.md.
#
#   rekor-local.sh start [DIR]   build (cached) and start, unless a Rekor answers on :3000
#   rekor-local.sh stop [DIR]    stop what start started, by pid
#   rekor-local.sh build         only build the binaries
#
# DIR (default .ogma/rekor-local) holds the log's state: MariaDB's data, the signer key, the tree
# id, pids and logs. The binaries are cached per version under $OGMA_CACHE (default
# ~/.cache/ogma), so a new checkout does not build them again.
set -euo pipefail
cmd=${1:-start}
dir=$(realpath -m "${2:-.ogma/rekor-local}")
REKOR_VERSION=v1.5.4
TRILLIAN_VERSION=v1.7.3
cache=${OGMA_CACHE:-$HOME/.cache/ogma}
bin=$cache/rekor-local-$REKOR_VERSION-trillian-$TRILLIAN_VERSION
url=http://127.0.0.1:3000
dsn='trillian:trillianpw@tcp(127.0.0.1:3306)/trillian'

answers() { curl -sf -m 2 "$url/api/v1/log" >/dev/null 2>&1; }

build() {
	if ! command -v mariadbd >/dev/null && [ ! -x /usr/sbin/mariadbd ]; then
		echo ">> installing mariadb-server (Debian; about 20 s, once per machine)"
		apt-get update -qq
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mariadb-server >/dev/null
	fi
	if [ -x "$bin/rekor-server" ] && [ -x "$bin/trillian_log_server" ] && [ -x "$bin/trillian_log_signer" ] && [ -x "$bin/createtree" ]; then
		return
	fi
	echo ">> building rekor-server $REKOR_VERSION and trillian $TRILLIAN_VERSION into $bin"
	echo "   (once per machine: about 4 minutes and 2.5 GB of module and build cache on 2 cores)"
	mkdir -p "$bin"
	GOBIN=$bin GOFLAGS=-modcacherw go install \
		github.com/google/trillian/cmd/trillian_log_server@$TRILLIAN_VERSION \
		github.com/google/trillian/cmd/trillian_log_signer@$TRILLIAN_VERSION \
		github.com/google/trillian/cmd/createtree@$TRILLIAN_VERSION
	GOBIN=$bin GOFLAGS=-modcacherw go install github.com/sigstore/rekor/cmd/rekor-server@$REKOR_VERSION
}

# wait_for NAME CHECK... retries CHECK for up to 30 s.
wait_for() {
	local name=$1
	shift
	for _ in $(seq 1 300); do
		if "$@" >/dev/null 2>&1; then return 0; fi
		sleep 0.1
	done
	echo "$name did not come up within 30 s; see $dir/log" >&2
	return 1
}

# launch NAME COMMAND... starts a daemon, its pid in run/NAME.pid and its output in log/NAME.log.
launch() {
	local name=$1
	shift
	nohup "$@" >"$dir/log/$name.log" 2>&1 &
	echo $! >"$dir/run/$name.pid"
}

start() {
	if answers; then
		echo ">> a Rekor answers on $url"
		return
	fi
	build
	mkdir -p "$dir/run" "$dir/log" "$dir/keys"
	chmod 700 "$dir"
	if [ ! -s "$dir/keys/rekor-signer.pem" ]; then
		# The log's signing key: a file key, so checkpoints and SETs verify across restarts.
		openssl ecparam -name prime256v1 -genkey -noout -out "$dir/keys/ec.key"
		openssl pkcs8 -topk8 -nocrypt -in "$dir/keys/ec.key" -out "$dir/keys/rekor-signer.pem"
		rm "$dir/keys/ec.key"
		chmod 600 "$dir/keys/rekor-signer.pem"
	fi
	local fresh=false
	if [ ! -d "$dir/mysql" ]; then
		mariadb-install-db --user=root --datadir="$dir/mysql" --auth-root-authentication-method=normal \
			--skip-test-db >"$dir/log/mariadb-install.log" 2>&1
		fresh=true
	fi
	echo ">> starting the local Rekor stack (MariaDB, Trillian, rekor-server), state in $dir"
	launch mariadbd /usr/sbin/mariadbd --no-defaults --user=root --datadir="$dir/mysql" \
		--socket="$dir/run/mysqld.sock" --pid-file="$dir/run/mariadbd.pid" \
		--bind-address=127.0.0.1 --port=3306 --log-error="$dir/log/mariadbd.err"
	wait_for mariadbd mariadb --socket="$dir/run/mysqld.sock" -uroot -e 'SELECT 1'
	if $fresh; then
		local schema
		schema=$(go mod download -json github.com/google/trillian@$TRILLIAN_VERSION | sed -n 's/.*"Dir": "\(.*\)",/\1/p')/storage/mysql/schema/storage.sql
		mariadb --socket="$dir/run/mysqld.sock" -uroot -e "CREATE DATABASE trillian;
			CREATE USER 'trillian'@'127.0.0.1' IDENTIFIED BY 'trillianpw';
			GRANT ALL ON trillian.* TO 'trillian'@'127.0.0.1';"
		mariadb --socket="$dir/run/mysqld.sock" -uroot trillian <"$schema"
	fi
	launch trillian_log_server "$bin/trillian_log_server" --rpc_endpoint=127.0.0.1:8090 --http_endpoint=127.0.0.1:8091 \
		--storage_system=mysql --quota_system=mysql --mysql_uri="$dsn" --logtostderr
	# The signer elects itself (no etcd) and sequences every 100 ms.
	launch trillian_log_signer "$bin/trillian_log_signer" --force_master --rpc_endpoint=127.0.0.1:8092 \
		--http_endpoint=127.0.0.1:8093 --storage_system=mysql --quota_system=mysql --mysql_uri="$dsn" \
		--sequencer_interval=100ms --batch_size=1000 --logtostderr
	wait_for trillian_log_server curl -sf http://127.0.0.1:8091/healthz
	# Without a persisted tree id rekor would start a new, empty log on every start.
	if [ ! -s "$dir/run/tree_id" ]; then
		"$bin/createtree" --admin_server=127.0.0.1:8090 --display_name=ogma-local >"$dir/run/tree_id.new" 2>"$dir/log/createtree.log"
		mv "$dir/run/tree_id.new" "$dir/run/tree_id"
	fi
	# No Redis: the search index and the retrieve API stay off.
	launch rekor-server "$bin/rekor-server" serve --log_type=prod \
		--rekor_server.address=127.0.0.1 --port=3000 --rekor_server.hostname=rekor.local \
		--trillian_log_server.address=127.0.0.1 --trillian_log_server.port=8090 \
		--trillian_log_server.tlog_id="$(cat "$dir/run/tree_id")" \
		--rekor_server.signer="$dir/keys/rekor-signer.pem" \
		--enable_retrieve_api=false \
		--enabled_api_endpoints=getLogInfo,getPublicKey,getLogProof,createLogEntry,getLogEntryByIndex,getLogEntryByUUID,searchLogQuery \
		--enable_attestation_storage=false
	wait_for rekor-server answers
	curl -sf "$url/api/v1/log/publicKey" >"$dir/keys/rekor-log.pub"
	echo ">> Rekor answers on $url (its public key: $dir/keys/rekor-log.pub)"
}

# stop_pid NAME: SIGTERM, then SIGKILL after 10 s (trillian_log_signer never exits on its own).
stop_pid() {
	local f=$dir/run/$1.pid pid
	[ -s "$f" ] || return 0
	pid=$(cat "$f")
	if kill "$pid" 2>/dev/null; then
		for _ in $(seq 1 100); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		kill -9 "$pid" 2>/dev/null || true
	fi
	rm -f "$f"
}

stop() {
	for name in rekor-server trillian_log_signer trillian_log_server mariadbd; do
		stop_pid "$name"
	done
	echo ">> the local Rekor stack in $dir is stopped"
}

case $cmd in
start) start ;;
stop) stop ;;
build) build ;;
*)
	echo "usage: $0 start|stop|build [DIR]" >&2
	exit 2
	;;
esac
