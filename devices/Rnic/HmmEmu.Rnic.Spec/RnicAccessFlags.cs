namespace HmmEmu.Rnic;

/// <summary>MR and QP access flags, with the bit values of libibverbs' <c>ibv_access_flags</c>.</summary>
[Flags]
public enum RnicAccessFlags : uint
{
    /// <summary>Local read only (always allowed).</summary>
    None = 0,

    /// <summary>The device may write the MR for local operations (receive buffers, RDMA READ and atomic results).</summary>
    LocalWrite = 1u << 0,

    /// <summary>A peer may RDMA WRITE into the MR (requires LocalWrite).</summary>
    RemoteWrite = 1u << 1,

    /// <summary>A peer may RDMA READ from the MR.</summary>
    RemoteRead = 1u << 2,

    /// <summary>A peer may run atomics on the MR (requires LocalWrite).</summary>
    RemoteAtomic = 1u << 3,

    /// <summary>The MR is on-demand paging: its MTT entries start invalid and are filled by the driver on page faults.</summary>
    OnDemand = 1u << 6,
}
