package push

import (
	"encoding/base64"
	"errors"
	"net/http"
	"time"

	"github.com/orchardmdm/orchard/apns"
	"github.com/orchardmdm/orchard/internal/api"
	"github.com/orchardmdm/orchard/mdm"
)

// Register mounts the admin endpoints (the caller puts mux behind the API key).
func (s *Service) Register(mux *http.ServeMux) {
	mux.HandleFunc("PUT /v1/push-certificate", s.upload)
	mux.HandleFunc("GET /v1/push-certificate", s.show)
	mux.HandleFunc("POST /v1/push", s.pushAPI)
}

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

func (s *Service) upload(w http.ResponseWriter, r *http.Request) {
	var req UploadRequest
	if err := api.DecodeJSON(w, r, &req); err != nil {
		api.WriteError(w, http.StatusBadRequest, err.Error())
		return
	}
	var pc *apns.PushCert
	var err error
	switch {
	case req.P12 != "" && req.CertPEM != "":
		api.WriteError(w, http.StatusBadRequest, "give either p12 or cert_pem, not both")
		return
	case req.P12 != "":
		data, derr := base64.StdEncoding.DecodeString(req.P12)
		if derr != nil {
			api.WriteError(w, http.StatusBadRequest, "p12: not base64")
			return
		}
		pc, err = apns.ParseP12(data, req.Password)
	case req.CertPEM != "":
		pc, err = apns.ParsePEM([]byte(req.CertPEM), []byte(req.KeyPEM), req.Password)
	default:
		api.WriteError(w, http.StatusBadRequest, "give the push certificate: p12 (base64) with password, or cert_pem with key_pem")
		return
	}
	if err != nil {
		api.WriteError(w, http.StatusBadRequest, err.Error())
		return
	}
	if len(req.AppleID) > 256 {
		api.WriteError(w, http.StatusBadRequest, "apple_id is too long")
		return
	}
	err = s.Upload(r.Context(), pc, req.AppleID, req.Force)
	switch {
	case errors.Is(err, apns.ErrTopicChanged):
		api.WriteError(w, http.StatusConflict, err.Error())
		return
	case err != nil:
		s.serverError(w, err)
		return
	}
	info, _ := s.Info(time.Now())
	api.WriteJSON(w, http.StatusOK, info)
}

func (s *Service) show(w http.ResponseWriter, r *http.Request) {
	info, err := s.Info(time.Now())
	if errors.Is(err, ErrNoCertificate) {
		api.WriteError(w, http.StatusNotFound, err.Error())
		return
	}
	api.WriteJSON(w, http.StatusOK, info)
}

// PushRequest is the body of POST /v1/push.
type PushRequest struct {
	Targets []string `json:"targets"`
	UserID  string   `json:"user_id,omitempty"`
}

func (s *Service) pushAPI(w http.ResponseWriter, r *http.Request) {
	var req PushRequest
	if err := api.DecodeJSON(w, r, &req); err != nil {
		api.WriteError(w, http.StatusBadRequest, err.Error())
		return
	}
	if len(req.Targets) == 0 || len(req.Targets) > api.MaxTargets {
		api.WriteError(w, http.StatusBadRequest, "targets: give 1..100000 device or channel IDs")
		return
	}
	channels := make([]string, 0, len(req.Targets))
	for _, t := range req.Targets {
		id := t
		if req.UserID != "" {
			id = t + mdm.ChannelSeparator + req.UserID
		}
		if _, err := mdm.ParseChannelID(id); err != nil {
			api.WriteError(w, http.StatusBadRequest, "invalid target "+id+": "+err.Error())
			return
		}
		channels = append(channels, id)
	}
	out, err := s.Push(r.Context(), channels)
	switch {
	case errors.Is(err, ErrNoCertificate):
		api.WriteError(w, http.StatusConflict, err.Error())
		return
	case err != nil:
		s.serverError(w, err)
		return
	}
	api.WriteJSON(w, http.StatusAccepted, map[string]any{"targets": out})
}

func (s *Service) serverError(w http.ResponseWriter, err error) {
	s.log.Error("push API request failed", "err", err)
	api.WriteError(w, http.StatusInternalServerError, "internal server error")
}
