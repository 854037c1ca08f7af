use super::*;

const STATUS: &str = "hub port sta spd dev      sockfd local_busid
hs  0000 006 003 00010002 000003 3-1
hs  0001 004 000 00000000 000000 0-0
ss  0002 004 000 00000000 000000 0-0
ss  0003 004 000 00000000 000000 0-0
";

#[test]
fn the_status_file_parses_into_ports_per_hub() {
    let ports = parse_status(STATUS);
    assert_eq!(ports.len(), 4);
    assert_eq!(
        ports[0],
        PortStatus {
            hub: Hub::Hs,
            port: 0,
            rhport: 0,
            state: 6,
            speed: 3,
            devid: 0x0001_0002,
            local_busid: "3-1".into()
        }
    );
    assert!(ports[0].is_used() && ports[1].is_free());
    assert_eq!(
        (ports[2].hub, ports[2].port, ports[2].rhport),
        (Hub::Ss, 2, 0)
    );
}

#[test]
fn a_free_port_is_chosen_by_device_speed() {
    let ports = parse_status(STATUS);
    assert_eq!(
        free_port(&ports, speed_of("high").1).map(|p| p.port),
        Some(1)
    );
    assert_eq!(
        free_port(&ports, speed_of("super").1).map(|p| p.port),
        Some(2)
    );
    assert_eq!(speed_of("full"), (USB_SPEED_FULL, Hub::Hs));
    assert_eq!(speed_of("super_plus"), (USB_SPEED_SUPER, Hub::Ss));
    let busy = STATUS.replace("hs  0001 004", "hs  0001 006");
    assert_eq!(free_port(&parse_status(&busy), Hub::Hs), None);
}

#[test]
fn garbage_lines_in_status_are_skipped() {
    assert!(parse_status("hs x y\nnonsense\n\n").is_empty());
}

#[test]
fn a_missing_vhci_directory_says_to_load_the_module() {
    let dir = tempfile::tempdir().unwrap();
    let vhci = Vhci::new(dir.path().join("vhci_hcd.0"));
    let err = vhci.status().unwrap_err();
    assert!(matches!(err, VhciError::NotLoaded(_)));
    assert!(err.to_string().contains("modprobe vhci-hcd"));
    assert!(matches!(
        vhci.check_writable(),
        Err(VhciError::NotLoaded(_))
    ));
}

#[test]
fn attach_and_detach_write_the_kernel_format() {
    let dir = tempfile::tempdir().unwrap();
    for f in ["attach", "detach"] {
        std::fs::write(dir.path().join(f), "").unwrap();
    }
    let vhci = Vhci::new(dir.path());
    vhci.check_writable().unwrap();
    vhci.attach(1, 7, 0x0001_0002, USB_SPEED_HIGH).unwrap();
    vhci.detach(1).unwrap();
    let read = |f: &str| std::fs::read_to_string(dir.path().join(f)).unwrap();
    assert_eq!(read("attach"), "1 7 65538 3");
    assert_eq!(read("detach"), "1");
}

#[test]
fn device_nodes_are_found_below_the_device_and_its_interfaces() {
    let dir = tempfile::tempdir().unwrap();
    let dev = dir.path().join("3-1");
    for d in [
        "3-1:1.0/tty/ttyACM1",
        "3-1:1.2/0003:1D6B:0104.0002/hidraw/hidraw1",
        "3-1:1.3/host2/target2:0:0/2:0:0:0/block/sdb",
        "3-1:1.4/usbmisc/lp1",
    ] {
        std::fs::create_dir_all(dev.join(d)).unwrap();
    }
    // usbmisc nodes live below /dev/usb: the uevent's DEVNAME says so.
    let lp = dev.join("3-1:1.4/usbmisc/lp1/uevent");
    std::fs::write(lp, "MAJOR=180\nMINOR=1\nDEVNAME=usb/lp1\n").unwrap();
    let nodes = device_nodes(&dev);
    let names: Vec<_> = nodes
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        names,
        ["/dev/hidraw1", "/dev/sdb", "/dev/ttyACM1", "/dev/usb/lp1"]
    );
}

#[test]
fn the_device_dir_is_found_on_the_root_hub_of_the_ports_speed() {
    let dir = tempfile::tempdir().unwrap();
    for (bus, speed) in [("usb3", "480"), ("usb4", "5000")] {
        std::fs::create_dir_all(dir.path().join(bus)).unwrap();
        std::fs::write(dir.path().join(bus).join("speed"), format!("{speed}\n")).unwrap();
    }
    std::fs::create_dir_all(dir.path().join("usb3/3-2")).unwrap();
    std::fs::write(dir.path().join("usb3/3-2/idVendor"), "1d6b\n").unwrap();
    let vhci = Vhci::new(dir.path());
    let ports = parse_status(STATUS);
    assert_eq!(
        vhci.device_dir(&ports[1]),
        Some(dir.path().join("usb3/3-2"))
    );
    assert_eq!(vhci.device_dir(&ports[0]), None, "3-1 not enumerated yet");
}
