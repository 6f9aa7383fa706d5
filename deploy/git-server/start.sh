#!/bin/sh
# Create the bare policy repository once (the volume keeps it), then serve it.
set -eu
repo=/srv/git/policy.git
if [ ! -d "$repo" ]; then
  git init --bare --initial-branch=main "$repo"
  ln -s /usr/local/bin/post-receive "$repo/hooks/post-receive"
fi
exec git daemon --reuseaddr --base-path=/srv/git --export-all --enable=receive-pack /srv/git
