#!/usr/bin/env bash
# Installs the host as a systemd service: the binary, the unit, the man page and the shell
# completions, a system user `soar-host`, and /etc/soar-host/app.config (created by
# `host config -c` if absent, mode 0600; never overwritten).
#
# Usage: sudo bash packaging/install.sh [--binary PATH] [--destdir DIR] [-l COMPONENT...]
#
#   --binary PATH   the host binary to install (default: target/dist/host, else target/release/host)
#   --destdir DIR   install under DIR (for packaging: no user is created, systemctl is not run)
#   -l NAME...      components the new app.config enables (default: every linked one)
#
# Then: edit /etc/soar-host/app.config, `host selftest`, `host customize -y`, and
# `sudo systemctl enable --now soar-host`.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(dirname "$here")"
binary=""
destdir=""
components=()
while [[ $# -gt 0 ]]; do
    case "$1" in
        --binary) binary="$2"; shift 2 ;;
        --destdir) destdir="$2"; shift 2 ;;
        -l) shift; while [[ $# -gt 0 && "$1" != -* ]]; do components+=("$1"); shift; done ;;
        -h|--help) sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "install.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
done
if [[ -z "$binary" ]]; then
    for candidate in "$root/target/dist/host" "$root/target/release/host"; do
        if [[ -x "$candidate" ]]; then binary="$candidate"; break; fi
    done
fi
if [[ -z "$binary" || ! -x "$binary" ]]; then
    echo "install.sh: no host binary: build one with" >&2
    echo "  cargo build --profile dist -p host --no-default-features --features fn_slack,fn_trustar" >&2
    echo "or pass --binary PATH" >&2
    exit 1
fi

bin="$destdir/usr/local/bin"
unit_dir="$destdir/etc/systemd/system"
man_dir="$destdir/usr/local/share/man/man1"
bash_dir="$destdir/usr/local/share/bash-completion/completions"
zsh_dir="$destdir/usr/local/share/zsh/site-functions"
etc="$destdir/etc/soar-host"

echo "installing $binary"
install -d "$bin" "$unit_dir" "$man_dir" "$bash_dir" "$zsh_dir"
install -m 0755 "$binary" "$bin/host"
install -m 0644 "$here/soar-host.service" "$unit_dir/soar-host.service"
"$bin/host" man > "$man_dir/host.1"
"$bin/host" completions bash > "$bash_dir/host"
"$bin/host" completions zsh > "$zsh_dir/_host"

if [[ -z "$destdir" ]] && ! id soar-host >/dev/null 2>&1; then
    echo "creating the system user soar-host"
    useradd --system --home-dir /var/lib/soar-host --shell /usr/sbin/nologin soar-host
fi
install -d -m 0750 "$etc"
if [[ -z "$destdir" ]]; then chown root:soar-host "$etc"; fi
if [[ -e "$etc/app.config" ]]; then
    echo "$etc/app.config exists: left as it is (\`host config -u -c $etc/app.config\` adds missing sections)"
else
    if [[ ${#components[@]} -gt 0 ]]; then
        "$bin/host" config -c "$etc/app.config" -l "${components[@]}"
    else
        "$bin/host" config -c "$etc/app.config"
    fi
    if [[ -z "$destdir" ]]; then chown soar-host:soar-host "$etc/app.config"; fi
    # Under systemd the log directory is /var/log/soar-host (APP_LOG_DIR in the unit).
    sed -i 's|^logdir *=.*|#logdir = /var/log/soar-host|' "$etc/app.config"
fi
if [[ -z "$destdir" ]] && command -v systemctl >/dev/null; then
    systemctl daemon-reload || true
fi
echo "done: edit $etc/app.config, check it with"
echo "  sudo -u soar-host APP_CONFIG_FILE=$etc/app.config host selftest"
echo "push the customizations with \`host customize -y\`, then \`sudo systemctl enable --now soar-host\`"
