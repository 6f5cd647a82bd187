#!/usr/bin/env bash
# The same tenant as `controlplane tenants apply` builds, made (or removed) with the `openstack`
# CLI and the `bao` CLI, one command per resource, the way an operator would script it by hand.
#   bench/vending_cli.sh create|delete SLUG CIDR
# Needs: OS_CLIENT_CONFIG_FILE / OS_CLOUD for openstack, VAULT_ADDR / VAULT_TOKEN for bao.
set -euo pipefail
op=$1 slug=$2 cidr=${3:-}
os() { openstack "$@" > /dev/null; }
prj=$slug-prod

if [ "$op" = create ]; then
  os domain create --description "bench tenant $slug" "$slug"
  for g in admins members readers; do os group create --domain "$slug" "$slug-$g"; done
  os project create --domain "$slug" --tag cp-managed "$prj"
  os role add --group "$slug-admins" --group-domain "$slug" --project "$prj" --project-domain "$slug" manager
  os role add --group "$slug-members" --group-domain "$slug" --project "$prj" --project-domain "$slug" member
  os role add --group "$slug-readers" --group-domain "$slug" --project "$prj" --project-domain "$slug" reader
  pid=$(openstack project show --domain "$slug" -f value -c id "$prj")
  os network create --project "$pid" "$prj-net"
  os subnet create --project "$pid" --network "$prj-net" --subnet-range "$cidr" "$prj-subnet"
  os router create --project "$pid" --external-gateway public "$prj-router"
  os router add subnet "$prj-router" "$prj-subnet"
  os security group create --project "$pid" --description "no ingress, all egress" baseline
  os quota set --cores 32 --ram 65536 --instances 16 "$pid"
  os quota set --networks 4 --subnets 8 --ports 128 --routers 2 --floating-ips 4 --secgroups 20 \
    --secgroup-rules 200 "$pid"
  os quota set --gigabytes 600 --volumes 20 --snapshots 20 "$pid"
  bao write -f "transit/keys/$slug" type=ed25519 > /dev/null
  printf 'path "transit/sign/%s" { capabilities = ["update"] }\n' "$slug" | bao policy write "tenant-$slug" - > /dev/null
  bao write "auth/approle/role/tenant-$slug" token_policies="tenant-$slug" token_ttl=20m > /dev/null
  bao kv put -mount=kv "tenants/$slug/_meta" managed_by=bench > /dev/null
else
  pid=$(openstack project show --domain "$slug" -f value -c id "$prj")
  os router remove subnet "$prj-router" "$prj-subnet"
  os router delete "$prj-router"
  os subnet delete "$prj-subnet"
  os network delete "$prj-net"
  for sg in $(openstack security group list --project "$pid" -f value -c ID); do os security group delete "$sg"; done
  os quota delete "$pid"
  os project delete "$pid"
  for g in admins members readers; do os group delete --domain "$slug" "$slug-$g"; done
  os domain set --disable "$slug"
  os domain delete "$slug"
  bao delete "auth/approle/role/tenant-$slug" > /dev/null
  bao policy delete "tenant-$slug" > /dev/null
  bao kv metadata delete -mount=kv "tenants/$slug/_meta" > /dev/null
fi
