# Shared settings of the image scripts (sourced): a private containers/storage under the image
# cache, chroot isolation and no cgroups, which work as root without a daemon (CI, sandboxes).
# The overlay driver is fast; WORKBENCH_STORAGE_DRIVER=vfs works where overlay mounts are refused.
CACHE_DIR="${WORKBENCH_IMAGE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/workbench-images}"
DRIVER="${WORKBENCH_STORAGE_DRIVER:-overlay}"
STORAGE_OPTS=(--root "$CACHE_DIR/storage-$DRIVER" --runroot "$CACHE_DIR/run-$DRIVER" --storage-driver "$DRIVER")
# Modest limits: podman's defaults for open files and processes exceed what many sandboxes allow.
ULIMIT_OPTS=(--ulimit nofile=4096:4096 --ulimit nproc=4096:4096)
RUN_OPTS=(--runtime runc --network host "${ULIMIT_OPTS[@]}")
STANDIN_IMAGE="localhost/workbench-standin-base:bookworm"
mkdir -p "$CACHE_DIR"
