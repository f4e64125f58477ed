// Package deploy holds no code: it is the home of Barge's deployment files
// (k8s/, systemd/, config/, monitoring/, scripts/), and its tests check
// them against the real broker: flags that `barge serve --help` lists,
// endpoints a running broker serves, metrics the README documents, and
// the files' own tools (promtool, systemd-analyze, shellcheck) where they
// are installed.
package deploy
