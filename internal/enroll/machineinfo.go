package enroll

import (
	"crypto/x509"
	_ "embed"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/orchardmdm/orchard/mdm"
	"github.com/orchardmdm/orchard/storage"
	"github.com/smallstep/pkcs7"
)

// appleRootDER is Apple's published "Apple Root CA" (Apple Inc., valid to
// 2035-02-09), SHA-256 B0B1730ECBC7FF4505142C49F1295E6EDA6BCAED7E2C68C5BE91B5A11001F024.
// Apple's MachineInfo documentation says the device certificate's chain
// validates against it.
//
//go:embed apple-root-ca.cer
var appleRootDER []byte

// AppleRoots returns Apple's root alone, the default trust for
// MachineInfo. It is a list, not an x509.CertPool: MachineInfo chains are
// built and checked here (see verifyAppleChain), which needs the roots'
// keys.
func AppleRoots() []*x509.Certificate {
	root, err := x509.ParseCertificate(appleRootDER)
	if err != nil {
		panic("enroll: embedded Apple root does not parse: " + err.Error()) // a build defect, caught by tests
	}
	return []*x509.Certificate{root}
}

// WithMachineInfoRoots trusts roots instead of Apple's for MachineInfo
// signatures (tests sign with their own "Apple" chain).
func WithMachineInfoRoots(roots []*x509.Certificate) Option {
	return func(h *Handler) { h.infoRoots = roots }
}

// WithInsecureMachineInfo accepts MachineInfo whose signature does not
// chain to the trusted root, logging a warning on every use (labs with
// test devices). Such enrollments are never Apple-verified: they cannot
// take over an enrolled device.
func WithInsecureMachineInfo() Option { return func(h *Handler) { h.insecureInfo = true } }

// machineInfo is what a device sends when it fetches its enrollment
// profile during Setup Assistant (Apple's MachineInfo object).
type machineInfo struct {
	UDID                     string `plist:"UDID"`
	Serial                   string `plist:"SERIAL"`
	Product                  string `plist:"PRODUCT"`
	Version                  string `plist:"VERSION"`
	OSVersion                string `plist:"OS_VERSION"`
	CanRequestSoftwareUpdate bool   `plist:"MDM_CAN_REQUEST_SOFTWARE_UPDATE"`

	// unverified says why the signer's chain did not validate against the
	// trusted root (nil: Apple-verified).
	unverified error
}

// readMachineInfo reads a Setup Assistant request's MachineInfo for an
// enrollment of kind method, answering the request itself when it cannot
// go on: 400 for a body that is not a signed MachineInfo, 403 (recorded)
// for one not verified against the trusted root, unless the lab flag is on.
func (h *Handler) readMachineInfo(w http.ResponseWriter, r *http.Request, method string) (*machineInfo, bool) {
	body, ok := h.readBody(w, r, maxMachineInfoBody)
	if !ok {
		return nil, false
	}
	info, err := parseMachineInfo(body, h.infoRoots, h.now())
	switch {
	case err != nil:
		h.fail(w, http.StatusBadRequest, err)
		return nil, false
	case info.unverified != nil && h.insecureInfo:
		h.log.Warn("enroll: accepting MachineInfo not verified against Apple's root (--insecure-machineinfo is on)",
			"method", method, "serial", info.Serial, "udid", info.UDID, "why", oneLine(info.unverified.Error()))
	case info.unverified != nil:
		h.refuse(w, r, method, info, "machineinfo_invalid", "MachineInfo is not signed by an Apple device certificate",
			"MachineInfo not verified against Apple's root: "+oneLine(info.unverified.Error()))
		return nil, false
	}
	if h.policy != nil {
		// Platform and OS are known here: refuse before a profile is handed
		// out, rather than let Setup Assistant fail at Authenticate.
		d, err := h.policy.Decide(r.Context(), PolicyAttempt{Method: method, Platform: mdm.Platform(info.Product, ""),
			OSVersion: info.OSVersion, DeviceID: info.UDID, Serial: info.Serial})
		if err != nil {
			h.fail(w, http.StatusInternalServerError, err)
			return nil, false
		}
		if !d.Allowed {
			h.refuseBy(w, r, method, info, d, d.Message+"; "+d.Remedy)
			return nil, false
		}
	}
	h.log.Info("enroll: Setup Assistant device", "method", method, "serial", info.Serial, "udid", info.UDID,
		"product", info.Product, "os_version", info.OSVersion, "build", info.Version,
		"can_request_software_update", info.CanRequestSoftwareUpdate, "apple_verified", info.unverified == nil)
	return info, true
}

// refuse answers 403 with msg and records the attempt with its reason
// code and why (which may say more than the device is told).
func (h *Handler) refuse(w http.ResponseWriter, r *http.Request, method string, info *machineInfo, code, msg, why string) {
	h.refuseBy(w, r, method, info, PolicyDecision{Reason: code}, msg, why)
}

// refuseBy is refuse for a decision of the enrollment policy.
func (h *Handler) refuseBy(w http.ResponseWriter, r *http.Request, method string, info *machineInfo, d PolicyDecision, msg string, why ...string) {
	reason := msg
	if len(why) > 0 {
		reason = why[0]
	}
	f := storage.EnrollmentFailure{At: h.now(), UDID: info.UDID, Serial: info.Serial, Method: method, Reason: reason,
		Code: d.Reason, Stage: "machineinfo", Platform: mdm.Platform(info.Product, ""), OSVersion: info.OSVersion,
		Policy: d.Policy, Rule: d.Rule}
	if err := h.store.RecordEnrollmentFailure(r.Context(), &f); err != nil {
		// The refusal stands; only the report misses it.
		h.log.Error("enroll: record enrollment failure", "err", err)
	}
	h.log.Warn("enroll: Setup Assistant enrollment refused", "method", method, "serial", info.Serial, "udid", info.UDID, "why", why)
	h.fail(w, http.StatusForbidden, errors.New(msg))
}

// parseMachineInfo reads the CMS-signed MachineInfo plist. A body that is
// not one, or whose signature does not verify, is an error; a good
// signature whose certificate chain (the intermediates ride in the CMS)
// does not validate against roots at now sets info.unverified.
func parseMachineInfo(body []byte, roots []*x509.Certificate, now time.Time) (*machineInfo, error) {
	p7, err := pkcs7.Parse(body)
	if err != nil {
		return nil, errors.New("body is not a signed MachineInfo")
	}
	// The content signature first (pkcs7 accepts SHA-1 digests there, which
	// devices may use), then the chain, which pkcs7's chain check would hand
	// to crypto/x509 and its refusal of SHA-1.
	if err := p7.Verify(); err != nil {
		return nil, errors.New("MachineInfo signature does not verify")
	}
	var chainErr error
	if signer := p7.GetOnlySigner(); signer == nil {
		chainErr = errors.New("MachineInfo has more than one signer")
	} else {
		chainErr = verifyAppleChain(signer, p7.Certificates, roots, now)
	}
	var info machineInfo
	if err := mdm.Unmarshal(p7.Content, &info); err != nil {
		return nil, errors.New("MachineInfo is not a plist")
	}
	if info.Serial == "" || info.UDID == "" || len(info.Serial) > 64 || len(info.UDID) > 128 {
		return nil, errors.New("MachineInfo needs UDID and SERIAL")
	}
	if len(info.Product) > 64 || len(info.Version) > 64 || len(info.OSVersion) > 64 {
		return nil, errors.New("MachineInfo PRODUCT, VERSION or OS_VERSION too long")
	}
	if chainErr != nil {
		info.unverified = chainErr
	}
	return &info, nil
}

// oneLine keeps a reason to one short line: certificate names in x509
// errors come from the sender.
func oneLine(s string) string {
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
	if len(s) > 240 {
		s = s[:240]
	}
	return s
}
