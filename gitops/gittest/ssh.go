package gittest

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/binary"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"golang.org/x/crypto/ssh"
)

// SSHServer serves the bare repositories below a root over ssh, running the
// real git-upload-pack and git-receive-pack, for one client key.
type SSHServer struct {
	// Addr is host:port; clone URLs are ssh://git@Addr/<repo>.
	Addr string
	// KeyFile is the client's private key (OpenSSH PEM, no passphrase).
	KeyFile string
	// KnownHostsFile pins the server's host key.
	KnownHostsFile string

	root string
	ln   net.Listener
	cfg  *ssh.ServerConfig
	wg   sync.WaitGroup
}

// NewSSHServer starts an SSHServer for the test, with fresh client and host
// keys written to a temporary directory; it stops at the test's end.
func NewSSHServer(tb testing.TB, root string) *SSHServer {
	tb.Helper()
	s, err := startSSH(root, tb.TempDir())
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(s.Close)
	return s
}

// RepoURL returns the ssh clone URL of repo (its base name below the root).
func (s *SSHServer) RepoURL(repo string) string {
	return "ssh://git@" + s.Addr + "/" + filepath.Base(repo)
}

func startSSH(root, dir string) (*SSHServer, error) {
	_, hostPriv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	hostSigner, err := ssh.NewSignerFromKey(hostPriv)
	if err != nil {
		return nil, err
	}
	clientPub, clientPriv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	sshClientPub, err := ssh.NewPublicKey(clientPub)
	if err != nil {
		return nil, err
	}
	s := &SSHServer{root: root, KeyFile: filepath.Join(dir, "id_ed25519"), KnownHostsFile: filepath.Join(dir, "known_hosts")}
	block, err := ssh.MarshalPrivateKey(clientPriv, "")
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(s.KeyFile, pem.EncodeToMemory(block), 0o600); err != nil {
		return nil, err
	}
	s.cfg = &ssh.ServerConfig{PublicKeyCallback: func(_ ssh.ConnMetadata, k ssh.PublicKey) (*ssh.Permissions, error) {
		if string(k.Marshal()) == string(sshClientPub.Marshal()) {
			return &ssh.Permissions{}, nil
		}
		return nil, errors.New("unknown key")
	}}
	s.cfg.AddHostKey(hostSigner)
	if s.ln, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
		return nil, err
	}
	s.Addr = s.ln.Addr().String()
	host, port, _ := net.SplitHostPort(s.Addr)
	line := fmt.Sprintf("[%s]:%s %s", host, port, ssh.MarshalAuthorizedKey(hostSigner.PublicKey()))
	if err := os.WriteFile(s.KnownHostsFile, []byte(line), 0o600); err != nil {
		return nil, err
	}
	s.wg.Add(1)
	go s.accept()
	return s, nil
}

// Close stops the server and waits for its connections to end.
func (s *SSHServer) Close() {
	if err := s.ln.Close(); err != nil {
		return
	}
	s.wg.Wait()
}

func (s *SSHServer) accept() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.serveConn(c)
		}()
	}
}

func (s *SSHServer) serveConn(c net.Conn) {
	defer c.Close() //nolint:errcheck // test server
	_, chans, reqs, err := ssh.NewServerConn(c, s.cfg)
	if err != nil {
		return
	}
	go ssh.DiscardRequests(reqs)
	for nc := range chans {
		if nc.ChannelType() != "session" {
			_ = nc.Reject(ssh.UnknownChannelType, "session only") //nolint:errcheck // test server
			continue
		}
		ch, creqs, err := nc.Accept()
		if err != nil {
			return
		}
		s.serveSession(ch, creqs)
	}
}

// serveSession runs the one git command a session asks for.
func (s *SSHServer) serveSession(ch ssh.Channel, reqs <-chan *ssh.Request) {
	defer ch.Close() //nolint:errcheck // test server
	for req := range reqs {
		if req.Type != "exec" || len(req.Payload) < 4 {
			_ = req.Reply(false, nil) //nolint:errcheck // test server
			continue
		}
		cmdline := string(req.Payload[4:])
		service, repo, ok := strings.Cut(cmdline, " ")
		repo = strings.Trim(repo, "'\"/")
		if !ok || (service != "git-upload-pack" && service != "git-receive-pack") || strings.Contains(repo, "..") {
			_ = req.Reply(false, nil) //nolint:errcheck // test server
			return
		}
		_ = req.Reply(true, nil) //nolint:errcheck // test server
		cmd := exec.Command("git", strings.TrimPrefix(service, "git-"), filepath.Join(s.root, repo))
		cmd.Env = Env()
		cmd.Stdin, cmd.Stdout, cmd.Stderr = ch, ch, ch.Stderr()
		code := uint32(0)
		if err := cmd.Run(); err != nil {
			code = 1
		}
		status := make([]byte, 4)
		binary.BigEndian.PutUint32(status, code)
		_, _ = ch.SendRequest("exit-status", false, status) //nolint:errcheck // test server
		_, _ = io.Copy(io.Discard, ch)                      //nolint:errcheck // drain
		return
	}
}
