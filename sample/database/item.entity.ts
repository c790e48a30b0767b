import { Column, Entity, PrimaryGeneratedColumn } from 'typeorm';

/** A row of the `item` table, created and seeded by the sample's migrations. */
@Entity('item')
export class Item {
  @PrimaryGeneratedColumn()
  id!: number;

  @Column({ type: 'varchar', length: 100 })
  name!: string;

  /** Price in cents; added by the second migration. */
  @Column({ type: 'int', default: 0 })
  price!: number;
}
