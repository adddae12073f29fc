namespace HmmEmu.Rnic;

/// <summary>Work-completion opcodes (byte 0x19 of an <see cref="RnicCqe"/>), with the values of libibverbs' <c>ibv_wc_opcode</c>.</summary>
public enum RnicWcOpcode : byte
{
    /// <summary>A SEND or SEND_WITH_IMM completed.</summary>
    Send = 0,

    /// <summary>An RDMA WRITE or RDMA_WRITE_WITH_IMM completed.</summary>
    RdmaWrite = 1,

    /// <summary>An RDMA READ completed.</summary>
    RdmaRead = 2,

    /// <summary>A compare-and-swap completed.</summary>
    CompSwap = 3,

    /// <summary>A fetch-and-add completed.</summary>
    FetchAdd = 4,

    /// <summary>A receive WQE consumed by a SEND completed.</summary>
    Recv = 128,

    /// <summary>A receive WQE consumed by an RDMA_WRITE_WITH_IMM completed (byte_len is the written length).</summary>
    RecvRdmaWithImm = 129,
}
