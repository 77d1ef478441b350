module github.com/orchardmdm/orchard

go 1.26

require (
	github.com/golang-jwt/jwt/v4 v4.4.1 // indirect
	github.com/micromdm/plist v0.2.2 // indirect
	github.com/prometheus/client_golang v1.23.2 // indirect
	github.com/sideshow/apns2 v0.25.0 // indirect
	github.com/smallstep/pkcs7 v0.2.3 // indirect
	github.com/smallstep/scep v0.0.0-20260331191114-261f960a40d1 // indirect
	go.etcd.io/bbolt v1.4.3 // indirect
	golang.org/x/crypto v0.41.0 // indirect
	golang.org/x/net v0.43.0 // indirect
	golang.org/x/sys v0.35.0 // indirect
	golang.org/x/text v0.28.0 // indirect
	software.sslmate.com/src/go-pkcs12 v0.7.4 // indirect
)
