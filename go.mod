module github.com/orchardmdm/orchard

go 1.26

require (
	github.com/sideshow/apns2 v0.25.0
	golang.org/x/crypto v0.41.0
	software.sslmate.com/src/go-pkcs12 v0.7.4
)

require github.com/stretchr/testify v1.10.0 // indirect
