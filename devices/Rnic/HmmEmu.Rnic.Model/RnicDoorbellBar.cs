using HmmEmu.Kernel.Bus;
using static HmmEmu.Rnic.RnicDoorbells;

namespace HmmEmu.Rnic.Model;

/// <summary>
/// BAR2: one 4 KiB doorbell page per user context. Every doorbell is a 64-bit write-only register; reads return 0. A
/// doorbell that names no object of its page's context, has reserved bits set, is not a valid ring advance, rings a
/// QP in RESET, or hits an unknown offset is dropped, counted in DOORBELL_ERRORS and reported as BadDoorbell. A bad
/// access size counts as a bus error. Never throws, never sleeps.
/// </summary>
public sealed class RnicDoorbellBar : IMmio
{
    private readonly RnicModel _model;
    private long _busErrors;

    internal RnicDoorbellBar(RnicModel model) => _model = model;

    /// <inheritdoc />
    public ulong Size => Bar2Size;

    /// <summary>Accesses of the wrong size or alignment so far.</summary>
    public long BusErrors => Interlocked.Read(ref _busErrors);

    /// <inheritdoc />
    public ulong Read(ulong offset, int size)
    {
        if (size != 8 || (offset & 7) != 0 || offset >= Bar2Size)
        {
            BusError();
            return ~0UL;
        }
        return 0;
    }

    /// <inheritdoc />
    public void Write(ulong offset, int size, ulong value)
    {
        if (size != 8 || (offset & 7) != 0 || offset >= Bar2Size)
        {
            BusError();
            return;
        }
        if (!_model.IsEnabled)
        {
            _model.DeviceError(RnicDeviceError.BadRegister, RnicRegisters.StatusBadRegister, offset);
            return;
        }
        uint context = (uint)(offset / PageSize);
        ulong register = offset % PageSize;
        bool ok = ReservedIsZero(value) && register switch
        {
            SqDoorbell => _model.Requester.RingSq(context, ObjectOf(value), IndexOf(value)),
            RqDoorbell => _model.RingRq(context, ObjectOf(value), IndexOf(value)),
            CqConsumerDoorbell => _model.SetCqConsumer(context, ObjectOf(value), IndexOf(value)),
            CqArmDoorbell => _model.ArmCq(context, ObjectOf(value), IndexOf(value), IsSolicitedArm(value)),
            _ => false,
        };
        if (!ok)
            _model.DoorbellDropped(offset);
    }

    private void BusError()
    {
        Interlocked.Increment(ref _busErrors);
        _model.ReportBusError();
    }
}
