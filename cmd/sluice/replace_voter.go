package main

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"

	"github.com/sluice-io/sluice/internal/link"
	"github.com/sluice-io/sluice/raftlog/controller"
)

// operatorID is the node id the CLI presents on the internal link. It is no
// broker's id (those are >= 1); the controller accepts operator calls
// (ReplaceVoter, Status) from any holder of the cluster secret.
const operatorID int32 = 0

// parseInternal reads "ID=host:port" entries.
func parseInternal(entries []string) (map[int32]string, error) {
	out := map[int32]string{}
	for _, e := range entries {
		id, addr, ok := strings.Cut(e, "=")
		n, err := strconv.ParseInt(id, 10, 32)
		if !ok || err != nil || n < 1 {
			return nil, usagef("--internal entry %q: want ID=host:port", e)
		}
		out[int32(n)] = addr
	}
	return out, nil
}

// replaceVoter asks the controller to swap a lost raft voter for a new node
// (the recovery path for a voter whose disk was wiped).
func replaceVoter(ctx context.Context, internal map[int32]string, secretFile string, dead, replacement int32) error {
	secret, err := link.LoadSecret(secretFile)
	if err != nil {
		return err
	}
	var first int32
	for id := range internal {
		if first == 0 || id < first {
			first = id
		}
	}
	dialer := &link.Dialer{Secret: secret, SelfID: operatorID}
	cl := controller.NewClient(func(ctx context.Context, id int32) (net.Conn, error) {
		addr, ok := internal[id]
		if !ok {
			return nil, fmt.Errorf("no internal address known for node %d", id)
		}
		conn, _, err := dialer.Dial(ctx, addr, link.PurposeControl)
		return conn, err
	}, func() int32 { return first }, controller.ClientConfig{})
	defer cl.Close()
	if err := cl.ReplaceVoter(ctx, dead, replacement); err != nil {
		return fmt.Errorf("replace voter %d with %d: %w", dead, replacement, err)
	}
	st, err := cl.Status(ctx)
	if err != nil {
		return err
	}
	fmt.Printf("voter %d replaced by %d; voters now %v, learners %v\n", dead, replacement, st.Voters, st.Learners)
	return nil
}
