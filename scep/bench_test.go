package scep_test

import (
	"context"
	"crypto/x509/pkix"
	"testing"
	"time"

	"github.com/orchardmdm/orchard/scep"
	"github.com/orchardmdm/orchard/scep/scepclient"
	"github.com/orchardmdm/orchard/storage"
	smallscep "github.com/smallstep/scep"
)

// BenchmarkPKCSReq measures one full enrollment (decrypt, check, sign,
// durable record, encrypted reply) in process, without HTTP.
func BenchmarkPKCSReq(b *testing.B) {
	e := newEnv(b)
	key := testKeys(b)[0]
	secret, _ := e.challenge(b, scep.ChallengeSpec{Kind: storage.KindProfile, MultiUse: true, TTL: time.Hour})
	csr, _ := scepclient.NewCSR(key, pkix.Name{CommonName: "b"}, secret)
	signer, _ := scepclient.SelfSigned(key, pkix.Name{CommonName: "b"})
	raw, err := scepclient.BuildMessage(e.ca.Cert, smallscep.PKCSReq, csr, signer, key)
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for b.Loop() {
		if _, status := e.srv.PKIOperation(context.Background(), raw); status != 200 {
			b.Fatal(status)
		}
	}
	if e.srv.Counts()[scep.OutcomeIssued] == 0 {
		b.Fatal("nothing issued")
	}
}
