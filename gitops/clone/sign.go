package clone

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/storer"
)

// LoadSigningKey reads an armored OpenPGP private key (gitops.signingKeyFile)
// and decrypts it with passphrase when it is protected.
func LoadSigningKey(file, passphrase string) (*openpgp.Entity, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("signing key: %w", err)
	}
	list, err := openpgp.ReadArmoredKeyRing(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("signing key %s: %w", file, err)
	}
	for _, e := range list {
		if e.PrivateKey == nil {
			continue
		}
		if err := decryptEntity(e, passphrase); err != nil {
			return nil, fmt.Errorf("signing key %s: %w", file, err)
		}
		return e, nil
	}
	return nil, fmt.Errorf("signing key %s: no private key in the file", file)
}

func decryptEntity(e *openpgp.Entity, passphrase string) error {
	if e.PrivateKey.Encrypted {
		if passphrase == "" {
			return errors.New("the key is encrypted and PROMOTEBOT_GIT_SIGNING_PASSPHRASE is not set")
		}
		if err := e.PrivateKey.Decrypt([]byte(passphrase)); err != nil {
			return errors.New("wrong passphrase")
		}
	}
	for _, sub := range e.Subkeys {
		if sub.PrivateKey != nil && sub.PrivateKey.Encrypted {
			if err := sub.PrivateKey.Decrypt([]byte(passphrase)); err != nil {
				return errors.New("wrong passphrase for a subkey")
			}
		}
	}
	return nil
}

// Signature is the author and committer identity of the bot's commits.
type Signature struct {
	Name, Email string
}

// newCommit writes a commit object and returns its hash.
func newCommit(s storer.EncodedObjectStorer, id Signature, key *openpgp.Entity, when time.Time,
	treeHash, parent plumbing.Hash, message string) (plumbing.Hash, error) {
	sig := object.Signature{Name: id.Name, Email: id.Email, When: when.Truncate(time.Second)}
	c := &object.Commit{Author: sig, Committer: sig, Message: message, TreeHash: treeHash}
	if !parent.IsZero() {
		c.ParentHashes = []plumbing.Hash{parent}
	}
	if key != nil {
		unsigned := s.NewEncodedObject()
		if err := c.EncodeWithoutSignature(unsigned); err != nil {
			return plumbing.ZeroHash, fmt.Errorf("encode commit: %w", err)
		}
		r, err := unsigned.Reader()
		if err != nil {
			return plumbing.ZeroHash, fmt.Errorf("encode commit: %w", err)
		}
		var buf bytes.Buffer
		err = openpgp.ArmoredDetachSign(&buf, key, r, nil)
		if cerr := r.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return plumbing.ZeroHash, fmt.Errorf("sign commit: %w", err)
		}
		c.PGPSignature = buf.String()
	}
	obj := s.NewEncodedObject()
	if err := c.Encode(obj); err != nil {
		return plumbing.ZeroHash, fmt.Errorf("encode commit: %w", err)
	}
	h, err := s.SetEncodedObject(obj)
	if err != nil {
		return plumbing.ZeroHash, fmt.Errorf("store commit: %w", err)
	}
	return h, nil
}
