# shellcheck shell=bash
# shellcheck disable=SC2034 # nginx_pid and dns_pid are the caller's, as each function says
# egress_servers.sh - the test servers the egress proxy's tests and benchmark
# share: a test CA with a server certificate, nginx serving TLS (and plain
# HTTP) on given addresses, dnsmasq answering fixed names. Source it; each
# function writes under the directory given and prints nothing on success.

# egress_certs DIR NAME...: DIR/ca.pem (world-readable), DIR/srv.pem and
# DIR/srv.key for the names (the first is the subject).
egress_certs() {
	local dir=$1 san
	shift
	san=$(printf 'DNS:%s,' "$@")
	openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=kars egress test CA" \
		-keyout "$dir/ca.key" -out "$dir/ca.pem" 2>/dev/null &&
		openssl req -newkey rsa:2048 -nodes -subj "/CN=$1" \
			-keyout "$dir/srv.key" -out "$dir/srv.csr" 2>/dev/null &&
		printf 'subjectAltName=%s\n' "${san%,}" >"$dir/san.ext" &&
		openssl x509 -req -in "$dir/srv.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca.key" \
			-CAcreateserial -days 2 -extfile "$dir/san.ext" -out "$dir/srv.pem" \
			2>/dev/null &&
		chmod 644 "$dir/ca.pem"
}

# egress_nginx DIR LISTEN...: starts nginx in the foreground (its pid in
# $nginx_pid) with one server on every "ADDR:PORT [ssl]" given, answering
# "served <host>" at / and files from DIR/www.
egress_nginx() {
	local dir=$1 l listens=''
	shift
	for l in "$@"; do listens+="		listen $l;"$'\n'; done
	mkdir -p "$dir/www"
	cat >"$dir/nginx.conf" <<CONF
daemon off;
pid $dir/nginx.pid;
error_log $dir/nginx.err;
events {}
http {
	access_log $dir/access.log;
	client_body_temp_path $dir;
	proxy_temp_path $dir;
	fastcgi_temp_path $dir;
	uwsgi_temp_path $dir;
	scgi_temp_path $dir;
	server {
$listens		ssl_certificate $dir/srv.pem;
		ssl_certificate_key $dir/srv.key;
		location = / { return 200 "served \$host\n"; }
		location / { root $dir/www; }
	}
}
CONF
	nginx -c "$dir/nginx.conf" -p "$dir" 2>"$dir/nginx.log" &
	nginx_pid=$!
}

# egress_dnsmasq DIR NAME=ADDR...: dnsmasq on 127.0.0.1:24053 (its pid in
# $dns_pid) answering each NAME with ADDR, and nothing else.
egress_dnsmasq() {
	local dir=$1 a
	local -a addrs=()
	shift
	for a in "$@"; do addrs+=("--address=/${a%%=*}/${a#*=}"); done
	dnsmasq --keep-in-foreground --no-resolv --no-hosts --listen-address=127.0.0.1 \
		--bind-interfaces --port=24053 --pid-file="$dir/dnsmasq.pid" "${addrs[@]}" \
		2>"$dir/dnsmasq.log" &
	dns_pid=$!
}
