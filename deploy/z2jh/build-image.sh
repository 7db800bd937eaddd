#!/usr/bin/env bash
# The learners' image for deploy/z2jh/values.yaml, built from binder/ by repo2docker (the
# same environment Binder builds), plus what a hub needs on top: jupyterhub-singleuser (the
# hub's major version) and nbgrader. Needs Docker and `pip install jupyter-repo2docker`.
#
#   bash deploy/z2jh/build-image.sh ghcr.io/YOUR-ORG/cnnviz-widgets:0.1.0
set -euo pipefail
cd "$(dirname "$0")/../.."
IMAGE="${1:?usage: build-image.sh IMAGE:TAG}"
jupyter-repo2docker --no-run --user-id 1000 --user-name jovyan --image-name "$IMAGE" \
    --appendix "$(cat deploy/z2jh/appendix.Dockerfile)" .
echo "built $IMAGE; push it, then set singleuser.image in deploy/z2jh/values.yaml"
