package adminapi

import (
	"encoding/base64"
	"errors"
	"net/http"
	"time"

	"github.com/orchardmdm/orchard/apns"
	"github.com/orchardmdm/orchard/internal/adminapi/apijson"
	"github.com/orchardmdm/orchard/internal/push"
	"github.com/orchardmdm/orchard/mdm"
)

// UploadRequest is the body of PUT /v1/push-certificate: a PKCS#12 file
// (base64) with its password, or a PEM certificate with its PEM key.
type UploadRequest struct {
	P12      string `json:"p12,omitempty"`
	Password string `json:"password,omitempty"`
	CertPEM  string `json:"cert_pem,omitempty"`
	KeyPEM   string `json:"key_pem,omitempty"`
	AppleID  string `json:"apple_id,omitempty"`
	Force    bool   `json:"force,omitempty"`
}

func (a *API) uploadPushCert(w http.ResponseWriter, r *http.Request) {
	var req UploadRequest
	if err := apijson.Decode(w, r, MaxJSONBody, &req); err != nil {
		apijson.Fail(w, r, a.log, err)
		return
	}
	var pc *apns.PushCert
	var err error
	switch {
	case req.P12 != "" && req.CertPEM != "":
		apijson.WriteError(w, http.StatusBadRequest, "give either p12 or cert_pem, not both")
		return
	case req.P12 != "":
		data, derr := base64.StdEncoding.DecodeString(req.P12)
		if derr != nil {
			apijson.WriteError(w, http.StatusBadRequest, "p12: not base64")
			return
		}
		pc, err = apns.ParseP12(data, req.Password)
	case req.CertPEM != "":
		pc, err = apns.ParsePEM([]byte(req.CertPEM), []byte(req.KeyPEM), req.Password)
	default:
		apijson.WriteError(w, http.StatusBadRequest, "give the push certificate: p12 (base64) with password, or cert_pem with key_pem")
		return
	}
	if err != nil {
		apijson.WriteError(w, http.StatusBadRequest, err.Error())
		return
	}
	if len(req.AppleID) > 256 {
		apijson.WriteError(w, http.StatusBadRequest, "apple_id is too long")
		return
	}
	err = a.push.Upload(r.Context(), pc, req.AppleID, req.Force)
	switch {
	case errors.Is(err, apns.ErrTopicChanged):
		apijson.WriteError(w, http.StatusConflict, err.Error())
		return
	case err != nil:
		apijson.Fail(w, r, a.log, err)
		return
	}
	info, _ := a.push.Info(time.Now())
	apijson.WriteJSON(w, http.StatusOK, info)
}

func (a *API) showPushCert(w http.ResponseWriter, r *http.Request) {
	info, err := a.push.Info(time.Now())
	if errors.Is(err, push.ErrNoCertificate) {
		apijson.WriteError(w, http.StatusNotFound, err.Error())
		return
	}
	apijson.WriteJSON(w, http.StatusOK, info)
}

// PushRequest is the body of POST /v1/push.
type PushRequest struct {
	Targets []string `json:"targets"`
	UserID  string   `json:"user_id,omitempty"`
}

func (a *API) pushNow(w http.ResponseWriter, r *http.Request) {
	var req PushRequest
	if err := apijson.Decode(w, r, MaxJSONBody, &req); err != nil {
		apijson.Fail(w, r, a.log, err)
		return
	}
	if len(req.Targets) == 0 || len(req.Targets) > MaxTargets {
		apijson.WriteError(w, http.StatusBadRequest, "targets: give 1..100000 device or channel IDs")
		return
	}
	channels := make([]string, 0, len(req.Targets))
	for _, t := range req.Targets {
		id := t
		if req.UserID != "" {
			id = t + mdm.ChannelSeparator + req.UserID
		}
		if _, err := mdm.ParseChannelID(id); err != nil {
			apijson.WriteError(w, http.StatusBadRequest, "invalid target "+id+": "+err.Error())
			return
		}
		channels = append(channels, id)
	}
	out, err := a.push.Push(r.Context(), channels)
	switch {
	case errors.Is(err, push.ErrNoCertificate):
		apijson.WriteError(w, http.StatusConflict, err.Error())
		return
	case err != nil:
		apijson.Fail(w, r, a.log, err)
		return
	}
	apijson.WriteJSON(w, http.StatusAccepted, map[string]any{"targets": out})
}
