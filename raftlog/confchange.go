package raftlog

import "go.etcd.io/raft/v3/raftpb"

// AddLearner returns the conf change that adds node id as a learner: it
// receives the log (or a snapshot) but does not vote. Learners follow the
// metadata log on every broker outside the voter set.
func AddLearner(id uint64) *raftpb.ConfChangeV2 {
	return &raftpb.ConfChangeV2{Changes: []*raftpb.ConfChangeSingle{
		{Type: raftpb.ConfChangeType_ConfChangeAddLearnerNode.Enum(), NodeId: new(id)},
	}}
}

// ReplaceVoter returns the conf change that replaces voter dead by learner
// replacement in one step. raft applies it through joint consensus (both
// the old and the new voter set must agree until it leaves the joint
// state, which it does on its own), so the cluster is never left with one
// voter fewer. Propose it only once the learner has caught up.
func ReplaceVoter(dead, replacement uint64) *raftpb.ConfChangeV2 {
	return &raftpb.ConfChangeV2{Changes: []*raftpb.ConfChangeSingle{
		{Type: raftpb.ConfChangeType_ConfChangeAddNode.Enum(), NodeId: new(replacement)},
		{Type: raftpb.ConfChangeType_ConfChangeRemoveNode.Enum(), NodeId: new(dead)},
	}}
}
