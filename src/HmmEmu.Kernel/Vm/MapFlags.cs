namespace HmmEmu.Kernel.Vm;

/// <summary>Flags of mmap (MAP_*).</summary>
[Flags]
public enum MapFlags
{
    /// <summary>No flags (invalid on its own: one of Shared, Private or SharedValidate is required).</summary>
    None = 0,

    /// <summary>MAP_SHARED: writes are visible to every mapping of the same object and survive fork as shared.</summary>
    Shared = 0x01,

    /// <summary>MAP_PRIVATE: copy-on-write mapping.</summary>
    Private = 0x02,

    /// <summary>MAP_SHARED_VALIDATE: a shared mapping whose flags the kernel validates (this kernel knows them all).</summary>
    SharedValidate = Shared | Private,

    /// <summary>MAP_FIXED: place the mapping exactly at the hint, replacing what was there.</summary>
    Fixed = 0x10,

    /// <summary>MAP_ANONYMOUS: not backed by a file; contents start zero-filled.</summary>
    Anonymous = 0x20,

    /// <summary>MAP_HUGETLB: anonymous memory backed by 2 MiB huge pages; length is rounded up to 2 MiB and the address is 2 MiB aligned.</summary>
    HugeTlb = 0x40000,

    /// <summary>MAP_FIXED_NOREPLACE: like Fixed, but fail with EEXIST instead of replacing.</summary>
    FixedNoReplace = 0x100000,

    /// <summary>MAP_PRIVATE | MAP_ANONYMOUS, the usual heap-like mapping.</summary>
    PrivateAnonymous = Private | Anonymous,

    /// <summary>MAP_SHARED | MAP_ANONYMOUS: memory shared with children across fork.</summary>
    SharedAnonymous = Shared | Anonymous,
}
