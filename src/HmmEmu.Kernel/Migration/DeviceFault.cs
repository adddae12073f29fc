using HmmEmu.Kernel.Vm;

namespace HmmEmu.Kernel.Migration;

/// <summary>A CPU fault on a device-private page, handed to the owner's <see cref="IDevicePagemapOps.MigrateToRam"/> (struct vm_fault).</summary>
/// <param name="Vma">The VMA of the faulting address.</param>
/// <param name="Address">The faulting address, page aligned.</param>
/// <param name="Page">The device-private page's pfn; locked and referenced by the fault path for the duration of the call.</param>
/// <param name="Order">
/// 9 when the fault hit a device-private PMD entry (a 2 MiB device THP, mapped whole: the driver may migrate the whole
/// block with <see cref="MigrateSelect.Compound"/>), 0 for an ordinary entry (vmf->pte set: migrate this page only).
/// </param>
public readonly record struct DeviceFault(Vma Vma, ulong Address, ulong Page, int Order = 0);
