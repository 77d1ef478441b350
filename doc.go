// Package orchard is the root of Orchard, a self-hosted Apple MDM server.
//
// The binary lives in cmd/orchard; the packages below the root own one
// concern each: mdm (the device protocol), scep (device identity
// certificates), apns (push), dep (Apple Business Manager sync) and storage.
package orchard
