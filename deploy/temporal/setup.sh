#!/bin/sh
# Prepares the compose stack's Temporal server for the concert service, once it answers: creates the namespace
# if it is missing and registers the custom search attributes the booking workflows upsert. A workflow that
# upserts an unregistered attribute fails its workflow task on every retry, so the API and the worker start only
# after this has succeeded (docker-compose.yml: service_completed_successfully). Running it again changes nothing.
#
#   setup.sh NAME=Type...     for example ConcertCode=Keyword SeatNumber=Int
#
# Types are the Temporal CLI's: Keyword, Text, Int, Double, Bool, Datetime, KeywordList. An attribute that
# already exists with another type is an error (the CLI refuses it), never silently kept.
# Environment: TEMPORAL_ADDRESS (host:port), TEMPORAL_NAMESPACE, NAMESPACE_RETENTION (a duration like 72h).
set -eu

: "${TEMPORAL_ADDRESS:?}" "${TEMPORAL_NAMESPACE:?}" "${NAMESPACE_RETENTION:?}"
if [ $# -eq 0 ]; then
	echo "usage: setup.sh NAME=Type..." >&2
	exit 2
fi

# Dial the server's IPv4 address: the server listens on 0.0.0.0 only, and on a Docker network with IPv6 the
# service name also resolves to an address nothing listens on. Fall back to the name if it has no IPv4 address.
host=${TEMPORAL_ADDRESS%:*}
port=${TEMPORAL_ADDRESS##*:}
ipv4=$(getent hosts "$host" | awk '$1 ~ /^[0-9.]+$/ { print $1; exit }' || true)
address="${ipv4:-$host}:$port"
ns=$TEMPORAL_NAMESPACE

# retry ATTEMPTS COMMAND...: run COMMAND until it succeeds, 2 s apart, at most ATTEMPTS times.
retry() {
	attempts=$1
	shift
	i=1
	until "$@"; do
		if [ "$i" -ge "$attempts" ]; then
			echo "temporal-setup: gave up after $attempts attempts: $*" >&2
			return 1
		fi
		i=$((i + 1))
		sleep 2
	done
}

ensure_namespace() {
	temporal operator namespace describe --address "$address" --namespace "$ns" >/dev/null 2>&1 ||
		temporal operator namespace create --address "$address" --namespace "$ns" --retention "$NAMESPACE_RETENTION"
}

# Turn NAME=Type arguments into --name NAME --type Type flags, and build a visibility query that names every
# attribute (the server rejects a query naming an unknown attribute).
query=""
for pair in "$@"; do
	shift
	name=${pair%%=*}
	type=${pair#*=}
	if [ -z "$name" ] || [ -z "$type" ] || [ "$name" = "$pair" ]; then
		echo "temporal-setup: '$pair' is not NAME=Type" >&2
		exit 2
	fi
	set -- "$@" --name "$name" --type "$type"
	query="${query:+$query OR }$name IS NULL"
done

echo "temporal-setup: waiting for Temporal at $address"
retry 90 temporal operator cluster health --address "$address"

echo "temporal-setup: namespace $ns"
retry 30 ensure_namespace

# A new namespace takes a few seconds to reach every frontend cache, hence the retries.
echo "temporal-setup: search attributes in $ns: $query"
retry 30 temporal operator search-attribute create --address "$address" --namespace "$ns" "$@"
retry 30 temporal workflow count --address "$address" --namespace "$ns" --query "$query" >/dev/null

# The other services read namespaces (which hold the attributes' names) from a cache refreshed every 2 s.
sleep 5
echo "temporal-setup: done"
