#!/usr/bin/env bash
# Multi-primary, multi-network Istio by hand: the runbook a platform team
# follows today (Istio's "Install Multi-Primary on different networks" and
# "Plug in CA Certificates" tasks), one cluster after the other, one command
# at a time, waiting where the docs say to wait.
#
# The first cluster runs the mesh today (self-signed istiod CA); the others
# run workloads in namespace `sample` and no Istio yet. At the end every
# cluster has Istio with meshID, clusterName and network set, cacerts signed
# by the first cluster's root (adopted: its workloads keep trusting), an
# east-west gateway, the cross-network Gateway, restarted workloads, and a
# remote secret for every other cluster, synced.
#
#   KUBECONFIG=...  CLUSTERS="cluster1 cluster2 ..."  WORK=/tmp/dir  bash multi-primary.sh
#
# Optional: CONTEXT_PREFIX (default sim-: context of cluster X is sim-X),
# MESH_ID (mesh1), TRUST_DOMAIN (cluster.local), NAMESPACE (sample),
# ISTIOCTL (istioctl on PATH).
#
# Left out, as the runbooks do until the end: backups of what is replaced.
# Remote secrets: `istioctl create-remote-secret` is not among the commands
# the simulator's istioctl stand-in knows, so `create_remote_secret` below
# does what it does with kubectl (read the reader's token on the cluster to
# be read, print the Secret): two commands per pair, as
# `istioctl create-remote-secret | kubectl apply -f -` is.
set -euo pipefail

: "${KUBECONFIG:?the kubeconfig with the context of every cluster}"
: "${CLUSTERS:?the clusters, the one running the mesh today first}"
: "${WORK:?a directory for certificates and install files}"
PREFIX=${CONTEXT_PREFIX-sim-}
MESH_ID=${MESH_ID:-mesh1}
TRUST_DOMAIN=${TRUST_DOMAIN:-cluster.local}
NS=${NAMESPACE:-sample}
ISTIOCTL=${ISTIOCTL:-istioctl}
read -r -a clusters <<<"$CLUSTERS"
source_cluster=${clusters[0]}
mkdir -p "$WORK"
cd "$WORK"

say() { printf '== %s\n' "$*" >&2; }
k() { local ctx=$1; shift; kubectl --context "$PREFIX$ctx" "$@"; }

# --- 1. The shared root: the one the source cluster's istiod signs with today.
say "root: adopt $source_cluster's self-signed root (istio-ca-secret)"
k "$source_cluster" -n istio-system get secret istio-ca-secret -o jsonpath='{.data.ca-cert\.pem}' | base64 -d >root-cert.pem
k "$source_cluster" -n istio-system get secret istio-ca-secret -o jsonpath='{.data.ca-key\.pem}' | base64 -d >root-key.pem
chmod 600 root-key.pem

# An intermediate CA for one cluster, as tools/certs/Makefile.selfsigned.mk
# makes it (ECDSA P-256 here, as migrate signs: same cost on both sides).
intermediate() {
    local c=$1
    mkdir -p "$c"
    cat >"$c/ca.conf" <<EOF
[ req ]
distinguished_name = dn
prompt = no
[ dn ]
O = Istio
CN = Intermediate CA
L = $c
[ ext ]
basicConstraints = critical, CA:true, pathlen:0
keyUsage = critical, digitalSignature, nonRepudiation, keyEncipherment, keyCertSign
subjectAltName = URI:spiffe://$TRUST_DOMAIN/ns/istio-system/sa/citadel
EOF
    openssl ecparam -name prime256v1 -genkey -noout -out "$c/ca-key.pem" 2>/dev/null
    openssl req -new -key "$c/ca-key.pem" -config "$c/ca.conf" -out "$c/ca.csr"
    openssl x509 -req -in "$c/ca.csr" -CA root-cert.pem -CAkey root-key.pem -CAcreateserial \
        -days 730 -extfile "$c/ca.conf" -extensions ext -out "$c/ca-cert.pem" 2>/dev/null
    cat "$c/ca-cert.pem" root-cert.pem >"$c/cert-chain.pem"
    cp root-cert.pem "$c/root-cert.pem"
}

# --- 2. Each cluster in turn.
i=0
for c in "${clusters[@]}"; do
    i=$((i + 1))
    net="network$i"

    say "$c: namespace istio-system on $net"
    k "$c" get namespace istio-system >/dev/null 2>&1 || k "$c" create namespace istio-system >/dev/null
    k "$c" label namespace istio-system "topology.istio.io/network=$net" --overwrite >/dev/null

    say "$c: cacerts (intermediate signed by the shared root)"
    intermediate "$c"
    k "$c" -n istio-system create secret generic cacerts \
        --from-file="$c/ca-cert.pem" --from-file="$c/ca-key.pem" \
        --from-file="$c/root-cert.pem" --from-file="$c/cert-chain.pem" \
        --dry-run=client -o yaml | k "$c" apply -f - >/dev/null

    say "$c: istioctl install (meshID $MESH_ID, clusterName $c, network $net)"
    cat >"istio-$c.yaml" <<EOF
apiVersion: install.istio.io/v1alpha1
kind: IstioOperator
spec:
  meshConfig:
    trustDomain: $TRUST_DOMAIN
  values:
    global:
      meshID: $MESH_ID
      multiCluster:
        clusterName: $c
      network: $net
EOF
    "$ISTIOCTL" install -y -f "istio-$c.yaml" --context "$PREFIX$c" >/dev/null
    # istiod reads cacerts when it starts: the source's istiod ran before.
    if [ "$c" = "$source_cluster" ]; then
        k "$c" -n istio-system rollout restart deployment/istiod >/dev/null
        k "$c" -n istio-system rollout status deployment/istiod --timeout=5m >/dev/null
    fi

    say "$c: east-west gateway (samples/multicluster/gen-eastwest-gateway.sh --network $net)"
    cat >"eastwest-$c.yaml" <<EOF
apiVersion: install.istio.io/v1alpha1
kind: IstioOperator
metadata:
  name: eastwest
spec:
  revision: ""
  profile: empty
  components:
    ingressGateways:
      - name: istio-eastwestgateway
        label:
          istio: eastwestgateway
          app: istio-eastwestgateway
          topology.istio.io/network: $net
        enabled: true
        k8s:
          env:
            - name: ISTIO_META_REQUESTED_NETWORK_VIEW
              value: $net
          service:
            ports:
              - { name: status-port, port: 15021, targetPort: 15021 }
              - { name: tls, port: 15443, targetPort: 15443 }
              - { name: tls-istiod, port: 15012, targetPort: 15012 }
              - { name: tls-webhook, port: 15017, targetPort: 15017 }
  values:
    gateways:
      istio-ingressgateway:
        injectionTemplate: gateway
    global:
      network: $net
EOF
    "$ISTIOCTL" install -y -f "eastwest-$c.yaml" --context "$PREFIX$c" >/dev/null
    k "$c" -n istio-system wait service/istio-eastwestgateway \
        --for=jsonpath='{.status.loadBalancer.ingress[0].ip}' --timeout=5m >/dev/null

    say "$c: expose services (samples/multicluster/expose-services.yaml)"
    k "$c" -n istio-system apply -f - >/dev/null <<EOF
apiVersion: networking.istio.io/v1
kind: Gateway
metadata:
  name: cross-network-gateway
spec:
  selector:
    istio: eastwestgateway
  servers:
    - port:
        number: 15443
        name: tls
        protocol: TLS
      tls:
        mode: AUTO_PASSTHROUGH
      hosts:
        - "*.local"
EOF

    say "$c: restart the workloads in $NS so their sidecars carry the new identity"
    k "$c" -n "$NS" rollout restart deployment >/dev/null
    for d in $(k "$c" -n "$NS" get deployment -o name); do
        k "$c" -n "$NS" rollout status "$d" --timeout=5m >/dev/null
    done
done

# --- 3. Remote secrets, every ordered pair: cluster $1 reads cluster $2.
# What `istioctl create-remote-secret --context CTX --name NAME` prints.
create_remote_secret() {
    local name=$1
    local server both ca token
    server=$(kubectl config view --minify --context "$PREFIX$name" -o jsonpath='{.clusters[0].cluster.server}')
    both=$(k "$name" -n istio-system get secret istio-reader-service-account-istio-remote-secret-token \
        -o go-template='{{index .data "ca.crt"}} {{.data.token | base64decode}}')
    ca=${both%% *}
    token=${both#* }
    cat <<EOF
apiVersion: v1
kind: Secret
metadata:
  name: istio-remote-secret-$name
  namespace: istio-system
  labels:
    istio/multiCluster: "true"
  annotations:
    networking.istio.io/cluster: $name
stringData:
  $name: |
    apiVersion: v1
    kind: Config
    clusters:
      - name: $name
        cluster:
          certificate-authority-data: $ca
          server: $server
    contexts:
      - name: $name
        context: { cluster: $name, user: $name }
    current-context: $name
    users:
      - name: $name
        user:
          token: $token
EOF
}

for b in "${clusters[@]}"; do
    # istioctl creates the reader's token Secret on the cluster it reads
    # (the ServiceAccount and ClusterRole come with the install).
    k "$b" -n istio-system apply -f - >/dev/null <<EOF
apiVersion: v1
kind: Secret
metadata:
  name: istio-reader-service-account-istio-remote-secret-token
  annotations:
    kubernetes.io/service-account.name: istio-reader-service-account
type: kubernetes.io/service-account-token
EOF
    k "$b" -n istio-system wait secret/istio-reader-service-account-istio-remote-secret-token \
        --for=jsonpath='{.data.token}' --timeout=1m >/dev/null
done
for a in "${clusters[@]}"; do
    for b in "${clusters[@]}"; do
        [ "$a" = "$b" ] && continue
        say "$a reads $b: remote secret"
        create_remote_secret "$b" | k "$a" apply -f - >/dev/null
    done
done

# --- 4. Check as the docs do: every istiod sees every other cluster synced.
want=$((${#clusters[@]} - 1))
for a in "${clusters[@]}"; do
    say "$a: istioctl remote-clusters until $want synced"
    deadline=$((SECONDS + 120))
    until [ "$("$ISTIOCTL" remote-clusters --context "$PREFIX$a" | grep -c 'istio-remote-secret-.* synced ')" -ge "$want" ]; do
        if [ "$SECONDS" -ge "$deadline" ]; then
            echo "$a: remote clusters not synced after 120s" >&2
            "$ISTIOCTL" remote-clusters --context "$PREFIX$a" >&2
            exit 1
        fi
        sleep 1
    done
done
say "done"
