// Package mdm holds Apple's MDM device protocol as Go types: the check-in
// messages devices PUT to the check-in URL, the command reports they PUT to
// the server URL, and the command envelope Orchard answers with. It decodes
// and validates; it has no transport or storage.
//
// Apple's reference: https://developer.apple.com/documentation/devicemanagement
// (check-in: "Check-in", commands: "Commands and Queries").
package mdm
