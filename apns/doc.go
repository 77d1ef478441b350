// Package apns owns Orchard's side of the Apple Push Notification service:
// reading and checking the MDM push certificate (topic, key, expiry,
// renewal rule), making the CSR an admin takes to a push certificate vendor,
// and waking devices with {"mdm":"<PushMagic>"} pushes over one HTTP/2
// client, either synchronously (Pusher) or in the background through a
// set of IDs to wake, coalesced by ID and never dropped (Dispatcher).
//
// Device tokens and push magic strings are secrets: this package never logs
// them beyond a short token prefix (see RedactToken).
package apns
