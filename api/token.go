package api

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"strings"

	"github.com/google/uuid"
)

// Tokens signs and checks queue tokens. A token is "<sessionID>.<signature>": the session ID is the
// workflow run ID of the user's booking session (random, no personal data), and the signature is an
// HMAC-SHA256 of it under CONCERT_TOKEN_SECRET, so a token cannot be forged or altered. The session row in
// the database binds it to one user and one concert, and its status decides what it may still do.
type Tokens struct {
	secret []byte
}

// errBadToken is returned for any token that is malformed or whose signature does not match.
var errBadToken = errors.New("invalid token")

// NewTokens returns a signer with the given secret; the secret must be at least 16 bytes.
func NewTokens(secret []byte) (*Tokens, error) {
	if len(secret) < 16 {
		return nil, errors.New("token secret must be at least 16 bytes")
	}
	return &Tokens{secret: secret}, nil
}

// Sign returns the token of a session.
func (t *Tokens) Sign(sessionID string) string {
	return sessionID + "." + t.mac(sessionID)
}

// Verify returns the session ID a token was signed for, or errBadToken.
func (t *Tokens) Verify(token string) (string, error) {
	i := strings.LastIndexByte(token, '.')
	if i <= 0 || len(token) > 128 {
		return "", errBadToken
	}
	sessionID, sig := token[:i], token[i+1:]
	if _, err := uuid.Parse(sessionID); err != nil || len(sessionID) != 36 {
		return "", errBadToken
	}
	if !hmac.Equal([]byte(sig), []byte(t.mac(sessionID))) {
		return "", errBadToken
	}
	return sessionID, nil
}

func (t *Tokens) mac(sessionID string) string {
	m := hmac.New(sha256.New, t.secret)
	m.Write([]byte("concert-queue-token/v1:"))
	m.Write([]byte(sessionID))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// bearer returns the token of an Authorization header: "Bearer <token>", or the bare token.
func bearer(header string) string {
	header = strings.TrimSpace(header)
	if len(header) > 7 && strings.EqualFold(header[:7], "bearer ") {
		return strings.TrimSpace(header[7:])
	}
	return header
}
