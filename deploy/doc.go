// Package deploy holds what runs Orchard outside a checkout: the systemd
// unit (orchard.service) here and the Dockerfile at the repository root.
// Its tests check both as far as the machine allows: the unit with
// systemd-analyze verify and security when installed, the image with a
// docker build when a daemon answers, otherwise by the Dockerfile's
// properties and a build of the same static binary.
package deploy
