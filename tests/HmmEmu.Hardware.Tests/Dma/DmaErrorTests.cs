using HmmEmu.Hardware.Dma;
using HmmEmu.Hardware.Memory;
using HmmEmu.Hardware.Rings;
using HmmEmu.Hardware.Translation;

namespace HmmEmu.Hardware.Tests.Dma;

public sealed class DmaErrorTests
{
    private const ulong Va = 0x40_0000;

    private static DmaCompletion RunOne(DmaRig rig, DmaDescriptor descriptor)
    {
        DmaCompletion done = default;
        rig.Run(() =>
        {
            rig.Submit(descriptor);
            done = rig.WaitForCompletions(1)[0];
        });
        return done;
    }

    private static (DmaRig Rig, FakeTranslator Translator) WithTranslator()
    {
        FakeTranslator? translator = null;
        var rig = DmaRig.Create(translator: _ => translator = new FakeTranslator());
        return (rig, translator!);
    }

    [Fact]
    public void Copy_SourcePageNotMapped_CompletesNotPresentAtThatPage()
    {
        var (rig, translator) = WithTranslator();
        using var _ = rig;
        ulong src = rig.Alloc(4), dst = rig.Alloc(4);
        translator.Map(Va, Aperture.System, src, 1);                 // page 1 of the source is missing
        translator.Map(Va + 0x10_0000, Aperture.System, dst, 4);

        var done = RunOne(rig, DmaDescriptor.Copy(Va + 100, Va + 0x10_0000, 8000, cookie: 7));

        Assert.Equal(new DmaCompletion(7, 0, DmaStatus.NotPresent, Access.Read, 4096 - 100, Va + 4096), done);
    }

    [Fact]
    public void Copy_DestinationReadOnly_CompletesPermissionWithWriteAccess()
    {
        var (rig, translator) = WithTranslator();
        using var _ = rig;
        ulong src = rig.Alloc(1), dst = rig.Alloc(1);
        translator.Map(Va, Aperture.System, src, 1);
        translator.Map(Va + 0x10_0000, Aperture.System, dst, 1, Access.Read);

        var done = RunOne(rig, DmaDescriptor.Copy(Va, Va + 0x10_0000 + 64, 100, cookie: 8));

        Assert.Equal(DmaStatus.Permission, done.Status);
        Assert.Equal(Access.Write, done.FaultAccess);
        Assert.Equal(Va + 0x10_0000 + 64, done.FaultAddress);
        Assert.Equal(0UL, done.BytesDone);
    }

    [Fact]
    public void Copy_DestinationPastEndOfRam_CompletesOutOfRangeAtFirstBadByte()
    {
        using var rig = DmaRig.Create();
        ulong src = rig.Alloc(2);
        ulong ramEnd = rig.Memory.Size;

        var done = RunOne(rig, DmaDescriptor.Copy(src, ramEnd - 1000, 5000, cookie: 9));

        Assert.Equal(DmaStatus.OutOfRange, done.Status);
        Assert.Equal(ramEnd, done.FaultAddress);
        Assert.Equal(1000UL, done.BytesDone);
    }

    [Fact]
    public void Copy_TranslationToVramWithoutVramPort_CompletesOutOfRange()
    {
        var (rig, translator) = WithTranslator();
        using var _ = rig;
        ulong dst = rig.Alloc(1);
        translator.Map(Va, Aperture.Vram, 0, 1);
        translator.Map(Va + 0x10_0000, Aperture.System, dst, 1);

        var done = RunOne(rig, DmaDescriptor.Copy(Va + 8, Va + 0x10_0000, 16, cookie: 1));

        Assert.Equal(DmaStatus.OutOfRange, done.Status);
        Assert.Equal(Va + 8, done.FaultAddress);
        Assert.Equal(Access.Read, done.FaultAccess);
    }

    [Fact]
    public void Copy_ZeroLength_CompletesBadDescriptor()
    {
        using var rig = DmaRig.Create();
        ulong buf = rig.Alloc(1);

        var done = RunOne(rig, DmaDescriptor.Copy(buf, buf, 0, cookie: 1));

        Assert.Equal(DmaStatus.BadDescriptor, done.Status);
    }

    [Fact]
    public void Copy_LengthAboveEngineMaximum_CompletesBadDescriptor()
    {
        using var rig = DmaRig.Create(options: new DmaEngineOptions { MaxTransferBytes = 1 << 20 });
        ulong buf = rig.Alloc(1);

        var done = RunOne(rig, DmaDescriptor.Copy(buf, buf, (1 << 20) + 1, cookie: 1));

        Assert.Equal(DmaStatus.BadDescriptor, done.Status);
        Assert.Equal(0UL, done.BytesDone);
    }

    [Fact]
    public void Copy_ReservedFlagBitSet_CompletesBadDescriptor()
    {
        using var rig = DmaRig.Create();
        ulong buf = rig.Alloc(1);

        var done = RunOne(rig, new DmaDescriptor(buf, buf + 64, 16, (DmaFlags)0x80, 0, 1));

        Assert.Equal(DmaStatus.BadDescriptor, done.Status);
    }

    [Fact]
    public void Fill_PatternWiderThanAByte_CompletesBadDescriptor()
    {
        using var rig = DmaRig.Create();
        ulong buf = rig.Alloc(1);

        var done = RunOne(rig, new DmaDescriptor(0x1FF, buf, 16, DmaFlags.Fill, 0, 1));

        Assert.Equal(DmaStatus.BadDescriptor, done.Status);
    }

    [Fact]
    public void Copy_Fault_RaisesTheErrorInterrupt()
    {
        using var rig = DmaRig.Create();

        RunOne(rig, DmaDescriptor.Copy(rig.Memory.Size, rig.Alloc(1), 16, cookie: 1));

        Assert.Equal(1, rig.Interrupts.Errors);
    }

    [Fact]
    public void Doorbell_IndexBeyondRing_StopsSubmissionRingAndRaisesErrorInterrupt()
    {
        using var rig = DmaRig.Create(sqCount: 8);

        Assert.False(rig.Engine.Doorbell(17));

        Assert.Equal(new RingStatus(RingState.Stopped, RingError.BadIndex, 17), rig.Engine.Submission.Status);
        Assert.Equal(1, rig.Interrupts.Errors);
        Assert.Equal(1L, rig.Engine.Stats.RingErrors);
    }

    [Fact]
    public void ConfigureSubmissionRing_MisalignedBase_ReportsBadBaseAndRaisesErrorInterrupt()
    {
        using var rig = DmaRig.Create();

        Assert.Equal(RingError.BadBase, rig.Engine.ConfigureSubmissionRing(rig.SqBase + 8, 16));

        Assert.Equal(RingError.BadBase, rig.Engine.Submission.Status.Error);
        Assert.Equal(1, rig.Interrupts.Errors);
    }
}
