# Sourced by the image scripts: podman as this machine needs it, with runc and cgroupfs (crun refuses this VM's hybrid
# cgroups). `.ci/container-tools.sh` installs both.
podman() { command podman --runtime runc --cgroup-manager=cgroupfs "$@"; }
