namespace HmmEmu.Rnic;

/// <summary>Send WQE opcodes (byte 0x00 of an <see cref="RnicSendWqe"/>), with the values of libibverbs' <c>ibv_wr_opcode</c>.</summary>
public enum RnicWrOpcode : byte
{
    /// <summary>Writes the SGEs' bytes to the remote address (needs RemoteWrite on the rkey).</summary>
    RdmaWrite = 0,

    /// <summary>RDMA WRITE, then consumes a receive WQE at the peer, which completes RecvRdmaWithImm with the immediate.</summary>
    RdmaWriteWithImm = 1,

    /// <summary>Sends the SGEs' bytes into the peer's next receive WQE.</summary>
    Send = 2,

    /// <summary>SEND carrying a 32-bit immediate that the peer's receive completion reports.</summary>
    SendWithImm = 3,

    /// <summary>Reads from the remote address into the SGEs (needs RemoteRead on the rkey, LocalWrite on the lkeys).</summary>
    RdmaRead = 4,

    /// <summary>64-bit compare-and-swap at an 8-byte-aligned remote address; the original value lands in SGE 0 (8 bytes).</summary>
    AtomicCmpAndSwp = 5,

    /// <summary>64-bit fetch-and-add at an 8-byte-aligned remote address; the original value lands in SGE 0 (8 bytes).</summary>
    AtomicFetchAndAdd = 6,
}
