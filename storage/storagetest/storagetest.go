// Package storagetest is the conformance suite every storage backend must
// pass unchanged. A backend's test calls Run with a constructor that returns
// a fresh, empty store on real storage.
package storagetest
