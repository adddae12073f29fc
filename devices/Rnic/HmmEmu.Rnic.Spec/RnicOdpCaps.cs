namespace HmmEmu.Rnic;

/// <summary>ODP_CAPS: the RC operations that may touch on-demand-paging MRs (the bits of the kernel's <c>ib_odp_transport_cap_bits</c>).</summary>
[Flags]
public enum RnicOdpCaps : uint
{
    /// <summary>None.</summary>
    None = 0,

    /// <summary>SEND from an ODP MR.</summary>
    Send = 1u << 0,

    /// <summary>Receive into an ODP MR.</summary>
    Recv = 1u << 1,

    /// <summary>RDMA WRITE to or from an ODP MR.</summary>
    Write = 1u << 2,

    /// <summary>RDMA READ to or from an ODP MR.</summary>
    Read = 1u << 3,

    /// <summary>Atomics on an ODP MR.</summary>
    Atomic = 1u << 4,

    /// <summary>Every operation above.</summary>
    All = Send | Recv | Write | Read | Atomic,
}
