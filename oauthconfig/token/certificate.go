package token

import (
	"errors"
	"fmt"
	"time"

	"github.com/latchkey/latchkey/internal/clientcert"
	"github.com/latchkey/latchkey/internal/errs"
	"github.com/latchkey/latchkey/internal/outbound"
	"github.com/latchkey/latchkey/oauthconfig"
)

// WithCertificate returns c as cfg's requests use it: presenting the
// client certificate in cfg's settings (RFC 8705), taken from values,
// when cfg names one, else c itself. Errors are *errs.Error: Invalid when
// a setting has no value for the installation, ConfigurationError when
// the texts cannot be used (they do not parse, the key is not the
// certificate's, it expired). No message quotes either text.
func WithCertificate(c *outbound.Client, cfg *oauthconfig.Config, values map[string]string) (*outbound.Client, error) {
	if cfg.ClientCertSetting == "" {
		return c, nil
	}
	chain, key := values[cfg.ClientCertSetting], values[cfg.ClientKeySetting]
	for _, s := range []string{cfg.ClientCertSetting, cfg.ClientKeySetting} {
		if values[s] == "" {
			return nil, errs.New(errs.Invalid, "OAuth config %q presents the client certificate in settings %q and %q, and setting %q has no value for this installation", cfg.Name, cfg.ClientCertSetting, cfg.ClientKeySetting, s)
		}
	}
	cc, err := c.WithCertificate(chain, key)
	if err != nil {
		var ce *outbound.CertificateError
		if errors.As(err, &ce) {
			return nil, errs.New(errs.ConfigurationError, "the client certificate in settings %q and %q cannot be used: %v", cfg.ClientCertSetting, cfg.ClientKeySetting, ce)
		}
		return nil, err
	}
	return cc, nil
}

// certificateRefused is the error of a request whose client certificate
// the server refused in the TLS handshake (see outbound.CertificateRefused):
// the installation's settings are wrong, as with invalid_client. what
// names the endpoint ("the token endpoint").
func certificateRefused(cfg *oauthconfig.Config, what string, err error) error {
	var ne *outbound.NetError
	reason := "it refused the TLS connection"
	if errors.As(err, &ne) {
		reason = ne.Message // the host and the TLS alert, nothing of ours
	}
	return &errs.Error{Code: errs.ConfigurationError, Err: &RetrieveError{},
		Message: fmt.Sprintf("%s refused the client certificate in settings %q and %q (%s)", what, cfg.ClientCertSetting, cfg.ClientKeySetting, reason)}
}

// CertificateInfo describes the client certificate a config presents, for
// an explanation: the settings, and of the certificate only what a server
// sees anyway, never the key.
type CertificateInfo struct {
	CertificateSetting string    `json:"certificate_setting"`
	KeySetting         string    `json:"key_setting"`
	Subject            string    `json:"subject,omitempty"`
	Issuer             string    `json:"issuer,omitempty"`
	NotAfter           time.Time `json:"not_after,omitzero"`
	// SHA256 is the certificate's thumbprint, which a provider that binds
	// tokens to it (RFC 8705 §3.1, x5t#S256) records.
	SHA256 string `json:"sha256,omitempty"`
}

// explainCertificate describes cfg's client certificate with values, and
// says why it cannot be used, if it cannot.
func explainCertificate(cfg *oauthconfig.Config, values map[string]string, now time.Time) (*CertificateInfo, string) {
	if cfg.ClientCertSetting == "" {
		return nil, ""
	}
	info := &CertificateInfo{CertificateSetting: cfg.ClientCertSetting, KeySetting: cfg.ClientKeySetting}
	chain, key := values[cfg.ClientCertSetting], values[cfg.ClientKeySetting]
	for _, s := range []string{cfg.ClientCertSetting, cfg.ClientKeySetting} {
		if values[s] == "" {
			return info, fmt.Sprintf("setting %q has no value for this installation: the client certificate cannot be presented", s)
		}
	}
	cert, err := clientcert.Pair(chain, key, now)
	if err != nil {
		return info, fmt.Sprintf("the client certificate in settings %q and %q cannot be used: %v", cfg.ClientCertSetting, cfg.ClientKeySetting, err)
	}
	info.Subject, info.Issuer = cert.Leaf.Subject.String(), cert.Leaf.Issuer.String()
	info.NotAfter, info.SHA256 = cert.Leaf.NotAfter.UTC(), clientcert.Thumbprint(cert.Leaf)
	return info, ""
}
